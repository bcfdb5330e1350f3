package dev.klamm.peer;

import java.util.Base64;
import java.util.List;
import java.util.Map;

/** Just enough JSON writing for the peer's output lines (no parsing). */
final class Json {
    private Json() {}

    /** Standard base64 with padding, or the JSON literal null. */
    static String b64(byte[] b) {
        return b == null ? "null" : "\"" + Base64.getEncoder().encodeToString(b) + "\"";
    }

    static String str(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder(s.length() + 2).append('"');
        for (int n = 0; n < s.length(); n++) {
            char c = s.charAt(n);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    /**
     * A JSON object from key/value pairs in order. Values: null, String, Boolean, Number,
     * {@link Raw} (already JSON), a List or a Map (of those).
     */
    static String obj(Object... kv) {
        StringBuilder out = new StringBuilder("{");
        for (int n = 0; n + 1 < kv.length; n += 2) {
            if (n > 0) {
                out.append(',');
            }
            out.append(str((String) kv[n])).append(':').append(value(kv[n + 1]));
        }
        return out.append('}').toString();
    }

    /** Text that is already JSON. */
    record Raw(String json) {}

    static String value(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof Raw r) {
            return r.json();
        }
        if (v instanceof String s) {
            return str(s);
        }
        if (v instanceof Boolean || v instanceof Number) {
            return v.toString();
        }
        if (v instanceof List<?> list) {
            StringBuilder out = new StringBuilder("[");
            for (int n = 0; n < list.size(); n++) {
                if (n > 0) {
                    out.append(',');
                }
                out.append(value(list.get(n)));
            }
            return out.append(']').toString();
        }
        if (v instanceof Map<?, ?> map) {
            StringBuilder out = new StringBuilder("{");
            boolean first = true;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                out.append(str(String.valueOf(e.getKey()))).append(':').append(value(e.getValue()));
            }
            return out.append('}').toString();
        }
        throw new IllegalArgumentException("no JSON for " + v.getClass());
    }
}
