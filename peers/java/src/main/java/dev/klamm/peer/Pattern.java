package dev.klamm.peer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The interop record pattern, as peers/PATTERN.md defines it: record {@code i} of
 * partition {@code p}. Rust (tests/support/interop.rs) and Go (peers/sarama/pattern.go)
 * implement the same rules.
 */
final class Pattern {
    static final long BASE_TS = 1_700_000_000_000L;

    /** A header of the pattern; {@code value} null is a null header value. */
    record Hdr(String key, byte[] value) {}

    private Pattern() {}

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static long timestamp(long i) {
        return BASE_TS + i;
    }

    static byte[] key(int p, long i) {
        if (i % 7 == 3) {
            return null;
        }
        if (i % 13 == 5) {
            return new byte[0];
        }
        return utf8("k-" + p + "-" + i);
    }

    static byte[] value(int p, long i) {
        if (i % 11 == 4) {
            return null;
        }
        if (i % 17 == 9) {
            return new byte[0];
        }
        int len = (int) (24 + (37 * i + 11L * p) % 200);
        byte[] text = utf8("v-" + p + "-" + i + "-");
        if (text.length >= len) {
            return text;
        }
        byte[] v = Arrays.copyOf(text, len);
        for (int j = 0; text.length + j < len; j++) {
            v[text.length + j] = (byte) ((7 * i + p + j) % 256);
        }
        return v;
    }

    static List<Hdr> headers(int p, long i) {
        List<Hdr> h = new ArrayList<>();
        if (i % 5 == 2) {
            return h;
        }
        h.add(new Hdr("seq", utf8(Long.toString(i))));
        h.add(new Hdr("part", utf8(Integer.toString(p))));
        h.add(new Hdr("dup", utf8("first")));
        h.add(new Hdr("nil", null));
        h.add(new Hdr("dup", utf8("second")));
        if (i % 3 == 0) {
            h.add(new Hdr("bin", new byte[] {0x00, (byte) 0xff, (byte) (i % 256), (byte) (p % 256)}));
        }
        if (i % 4 == 1) {
            h.add(new Hdr("empty", new byte[0]));
        }
        if (i % 2 == 1) {
            h.add(new Hdr("schlüssel", utf8("wert")));
        }
        return h;
    }

    /**
     * Compares a record read back with record {@code i} of partition {@code p}: null when it
     * matches, else "field: what differs".
     */
    static String diff(int p, long i, byte[] key, byte[] value, List<Hdr> headers, long ts) {
        byte[] wantKey = key(p, i);
        if (!Arrays.equals(wantKey, key)) {
            return "key: want " + Json.b64(wantKey) + " got " + Json.b64(key);
        }
        byte[] wantValue = value(p, i);
        if (!Arrays.equals(wantValue, value)) {
            return "value: want " + Json.b64(wantValue) + " got " + Json.b64(value);
        }
        List<Hdr> want = headers(p, i);
        if (want.size() != headers.size()) {
            return "headers: want " + want.size() + " headers, got " + headers.size();
        }
        for (int n = 0; n < want.size(); n++) {
            Hdr w = want.get(n);
            Hdr g = headers.get(n);
            if (!w.key().equals(g.key())) {
                return "headers[" + n + "].key: want " + w.key() + " got " + g.key();
            }
            if (!Arrays.equals(w.value(), g.value())) {
                return "headers[" + n + "].value: (" + w.key() + ") want " + Json.b64(w.value())
                        + " got " + Json.b64(g.value());
            }
        }
        if (ts != timestamp(i)) {
            return "timestamp: want " + timestamp(i) + " got " + ts;
        }
        return null;
    }
}
