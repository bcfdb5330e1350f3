package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
)

// The interop record pattern, as peers/PATTERN.md defines it: record i of
// partition p. Rust (tests/support/interop.rs) and Java
// (peers/java/.../Pattern.java) implement the same rules.

const baseTS int64 = 1_700_000_000_000

// hdr is a header of the pattern; a nil value is a null header value.
type hdr struct {
	key   string
	value []byte
}

func patternTimestamp(i int64) int64 { return baseTS + i }

// patternKey returns nil for a null key and a non-nil empty slice for an
// empty one.
func patternKey(p int32, i int64) []byte {
	switch {
	case i%7 == 3:
		return nil
	case i%13 == 5:
		return []byte{}
	}
	return []byte(fmt.Sprintf("k-%d-%d", p, i))
}

func patternValue(p int32, i int64) []byte {
	switch {
	case i%11 == 4:
		return nil
	case i%17 == 9:
		return []byte{}
	}
	n := int(24 + (37*i+11*int64(p))%200)
	v := []byte(fmt.Sprintf("v-%d-%d-", p, i))
	for j := int64(0); len(v) < n; j++ {
		v = append(v, byte((7*i+int64(p)+j)%256))
	}
	return v
}

func patternHeaders(p int32, i int64) []hdr {
	h := []hdr{}
	if i%5 == 2 {
		return h
	}
	h = append(h,
		hdr{"seq", []byte(strconv.FormatInt(i, 10))},
		hdr{"part", []byte(strconv.Itoa(int(p)))},
		hdr{"dup", []byte("first")},
		hdr{"nil", nil},
		hdr{"dup", []byte("second")},
	)
	if i%3 == 0 {
		h = append(h, hdr{"bin", []byte{0x00, 0xff, byte(i % 256), byte(p % 256)}})
	}
	if i%4 == 1 {
		h = append(h, hdr{"empty", []byte{}})
	}
	if i%2 == 1 {
		h = append(h, hdr{"schlüssel", []byte("wert")})
	}
	return h
}

// sameBytes tells null (nil) from empty: both must be nil, or both non-nil
// with equal contents.
func sameBytes(a, b []byte) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return bytes.Equal(a, b)
}

func b64(b []byte) string {
	if b == nil {
		return "null"
	}
	return base64.StdEncoding.EncodeToString(b)
}

// patternDiff compares a record read back with record i of partition p: ""
// when it matches, else the field and what differs.
func patternDiff(p int32, i int64, key, value []byte, headers []hdr, ts int64) (field, detail string) {
	if want := patternKey(p, i); !sameBytes(want, key) {
		return "key", fmt.Sprintf("want %s got %s", b64(want), b64(key))
	}
	if want := patternValue(p, i); !sameBytes(want, value) {
		return "value", fmt.Sprintf("want %s got %s", b64(want), b64(value))
	}
	want := patternHeaders(p, i)
	if len(want) != len(headers) {
		return "headers", fmt.Sprintf("want %d headers, got %d", len(want), len(headers))
	}
	for n := range want {
		if want[n].key != headers[n].key {
			return fmt.Sprintf("headers[%d].key", n), fmt.Sprintf("want %s got %s", want[n].key, headers[n].key)
		}
		if !sameBytes(want[n].value, headers[n].value) {
			return fmt.Sprintf("headers[%d].value", n),
				fmt.Sprintf("(%s) want %s got %s", want[n].key, b64(want[n].value), b64(headers[n].value))
		}
	}
	if ts != patternTimestamp(i) {
		return "timestamp", fmt.Sprintf("want %d got %d", patternTimestamp(i), ts)
	}
	return "", ""
}
