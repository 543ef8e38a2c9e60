package bus

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/podmedic/podmedic/internal/jsonscan"
)

// A fast path for the envelope's JSON. Every observation is encoded once by a watcher and
// decoded once by a rule handler, and encoding/json scans the object (the bulk of an envelope)
// three times on decode (validation, skip, copy) and twice on encode (validation, compaction).
// The fast path handles the envelopes podmedic itself writes in one pass and gives up on
// anything else (escapes or non-ASCII in the envelope's strings, unknown or repeated keys,
// nulls, whitespace in the object when encoding), which then goes through encoding/json. The
// result is the same as encoding/json's in every case, bytes and errors alike (see the fuzz
// tests in envelope_test.go).

// maxDepth is encoding/json's nesting limit; deeper input goes the slow way (and fails there).
const maxDepth = 10000

// encodeFast appends o's JSON to dst as json.Marshal would write it, or reports false when o
// needs encoding/json (a string needing escapes, an object that is not compact, HTML-safe JSON).
func encodeFast(dst []byte, o *Observation) ([]byte, bool) {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(o.Version), 10)
	for _, f := range [...]struct{ key, val string }{
		{`,"cluster":`, o.Cluster}, {`,"type":`, string(o.Type)}, {`,"kind":`, o.Kind},
		{`,"namespace":`, o.Namespace}, {`,"name":`, o.Name}, {`,"uid":`, o.UID},
		{`,"resourceVersion":`, o.ResourceVersion},
	} {
		dst = append(dst, f.key...)
		var ok bool
		if dst, ok = appendPlainString(dst, f.val); !ok {
			return dst, false
		}
	}
	dst = append(dst, `,"observedAt":`...)
	t, err := o.ObservedAt.MarshalJSON()
	if err != nil {
		return dst, false
	}
	dst = append(dst, t...)
	if o.Reason != "" {
		dst = append(dst, `,"reason":`...)
		var ok bool
		if dst, ok = appendPlainString(dst, o.Reason); !ok {
			return dst, false
		}
	}
	if o.Epoch != 0 {
		dst = append(dst, `,"epoch":`...)
		dst = strconv.AppendInt(dst, o.Epoch, 10)
	}
	dst = append(dst, `,"object":`...)
	if o.Object == nil {
		dst = append(dst, "null"...)
	} else {
		end, compact, ok := scanValue(o.Object, 0, 0)
		if !ok || !compact || end != len(o.Object) {
			return dst, false
		}
		dst = append(dst, o.Object...)
	}
	return append(dst, '}'), true
}

// appendPlainString appends s quoted when it has only printable ASCII that encoding/json
// writes as is (no '"', '\\', or the HTML-escaped '<', '>', '&').
func appendPlainString(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return dst, false
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// Keys of the envelope, as bits of a set.
const (
	keyV = 1 << iota
	keyCluster
	keyType
	keyKind
	keyNamespace
	keyName
	keyUID
	keyResourceVersion
	keyObservedAt
	keyReason
	keyEpoch
	keyObject
)

// decodeFast decodes an envelope as json.Unmarshal would into o, or reports false when the
// data needs encoding/json (which then gives the answer, error included).
func decodeFast(data []byte, o *Observation) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return false // an empty envelope: rare, let encoding/json do it
	}
	seen := 0
	for {
		// Key: a plain string.
		key, next, ok := plainString(data, i)
		if !ok {
			return false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		var bit int
		switch key {
		case "v":
			bit = keyV
			n, next, ok := jsonscan.Int(data, i)
			if !ok || n != int64(int(n)) {
				return false
			}
			o.Version, i = int(n), next
		case "epoch":
			bit = keyEpoch
			if o.Epoch, i, ok = jsonscan.Int(data, i); !ok {
				return false
			}
		case "object":
			bit = keyObject
			end, _, ok := scanValue(data, i, 0)
			if !ok || data[i] == 'n' { // null leaves Object alone in encoding/json
				return false
			}
			o.Object, i = append(json.RawMessage(nil), data[i:end]...), end
		case "observedAt":
			bit = keyObservedAt
			_, end, ok := plainString(data, i)
			if !ok {
				return false
			}
			var t time.Time
			if err := t.UnmarshalJSON(data[i:end]); err != nil {
				return false
			}
			o.ObservedAt, i = t, end
		default:
			var dst *string
			switch key {
			case "cluster":
				bit, dst = keyCluster, &o.Cluster
			case "type":
				bit = keyType
			case "kind":
				bit, dst = keyKind, &o.Kind
			case "namespace":
				bit, dst = keyNamespace, &o.Namespace
			case "name":
				bit, dst = keyName, &o.Name
			case "uid":
				bit, dst = keyUID, &o.UID
			case "resourceVersion":
				bit, dst = keyResourceVersion, &o.ResourceVersion
			case "reason":
				bit, dst = keyReason, &o.Reason
			default:
				return false // unknown keys, or keys encoding/json would match without regard to case
			}
			s, end, ok := plainString(data, i)
			if !ok {
				return false
			}
			if dst != nil {
				*dst = s
			} else {
				o.Type = ObservationType(s)
			}
			i = end
		}
		if seen&bit != 0 {
			return false // a repeated key: encoding/json keeps the last one
		}
		seen |= bit
		i = skipSpace(data, i)
		if i >= len(data) {
			return false
		}
		if data[i] == '}' {
			i++
			break
		}
		if data[i] != ',' {
			return false
		}
		i = skipSpace(data, i+1)
	}
	return skipSpace(data, i) == len(data)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// plainString reads a string of printable ASCII without escapes at data[i], returning its
// value and the index after its closing quote.
func plainString(data []byte, i int) (string, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return string(data[i+1 : j]), j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", i, false
		}
	}
	return "", i, false
}

// scanValue validates the JSON value starting at data[i] (RFC 8259, as encoding/json accepts
// it: bytes >= 0x80 are not checked for UTF-8) and returns the index after it. compact reports
// whether json.Marshal would copy it unchanged as a RawMessage: no whitespace, and none of the
// characters it escapes ('<', '>', '&', U+2028, U+2029).
func scanValue(data []byte, i, depth int) (end int, compact, ok bool) {
	if i >= len(data) {
		return i, false, false
	}
	switch c := data[i]; {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return i, false, false
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		compact = true
		j := i + 1
		if j < len(data) && isSpace(data[j]) {
			compact = false
			j = skipSpace(data, j)
		}
		if j < len(data) && data[j] == closing {
			return j + 1, compact, true
		}
		for {
			if c == '{' {
				var kc bool
				if j, kc, ok = jsonscan.String(data, j); !ok {
					return j, false, false
				}
				compact = compact && kc
				if j < len(data) && isSpace(data[j]) {
					compact = false
					j = skipSpace(data, j)
				}
				if j >= len(data) || data[j] != ':' {
					return j, false, false
				}
				j++
				if j < len(data) && isSpace(data[j]) {
					compact = false
					j = skipSpace(data, j)
				}
			}
			var vc bool
			if j, vc, ok = scanValue(data, j, depth+1); !ok {
				return j, false, false
			}
			compact = compact && vc
			if j < len(data) && isSpace(data[j]) {
				compact = false
				j = skipSpace(data, j)
			}
			if j >= len(data) {
				return j, false, false
			}
			if data[j] == closing {
				return j + 1, compact, true
			}
			if data[j] != ',' {
				return j, false, false
			}
			j++
			if j < len(data) && isSpace(data[j]) {
				compact = false
				j = skipSpace(data, j)
			}
		}
	case c == '"':
		return jsonscan.String(data, i)
	case c == '-' || (c >= '0' && c <= '9'):
		j, ok := jsonscan.Number(data, i)
		return j, true, ok
	case c == 't':
		return literal(data, i, "true")
	case c == 'f':
		return literal(data, i, "false")
	case c == 'n':
		return literal(data, i, "null")
	}
	return i, false, false
}

func literal(data []byte, i int, lit string) (int, bool, bool) {
	if len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit {
		return i + len(lit), true, true
	}
	return i, false, false
}
