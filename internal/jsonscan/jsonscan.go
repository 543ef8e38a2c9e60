// Package jsonscan holds the small JSON scanning helpers shared by podmedic's fast decoders
// (the bus envelope codec and the rules pod decoder).
package jsonscan

// Number validates the JSON number starting at data[i]
// (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) and returns the index just after it.
func Number(data []byte, i int) (int, bool) {
	j := i
	if data[j] == '-' {
		j++
	}
	digits := func() bool {
		start := j
		for j < len(data) && data[j] >= '0' && data[j] <= '9' {
			j++
		}
		return j > start
	}
	if j < len(data) && data[j] == '0' {
		j++
	} else if !digits() {
		return j, false
	}
	if j < len(data) && data[j] == '.' {
		j++
		if !digits() {
			return j, false
		}
	}
	if j < len(data) && (data[j] == 'e' || data[j] == 'E') {
		j++
		if j < len(data) && (data[j] == '+' || data[j] == '-') {
			j++
		}
		if !digits() {
			return j, false
		}
	}
	return j, true
}

// String validates the JSON string starting at data[i] and returns the index just after it.
// compact reports whether json.Marshal would copy it unchanged inside a RawMessage: none of
// the characters it escapes ('<', '>', '&', U+2028, U+2029).
func String(data []byte, i int) (end int, compact, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return i, false, false
	}
	compact = true
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return j + 1, compact, true
		case c < 0x20:
			return j, false, false
		case c == '\\':
			j++
			if j >= len(data) {
				return j, false, false
			}
			switch data[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(data)-j < 5 {
					return j, false, false
				}
				for _, h := range data[j+1 : j+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return j, false, false
					}
				}
				j += 4
			default:
				return j, false, false
			}
		case c == '<' || c == '>' || c == '&':
			compact = false
		case c == 0xE2 && j+2 < len(data) && data[j+1] == 0x80 && (data[j+2] == 0xA8 || data[j+2] == 0xA9):
			compact = false
		}
	}
	return len(data), false, false
}

// Int reads an integer without fraction or exponent at data[i] (at most 18 digits, so it
// cannot overflow) and returns it and the index just after it; on false the index is i.
func Int(data []byte, i int) (int64, int, bool) {
	j := i
	neg := j < len(data) && data[j] == '-'
	if neg {
		j++
	}
	start := j
	var n int64
	for j < len(data) && data[j] >= '0' && data[j] <= '9' && j-start < 18 {
		n = n*10 + int64(data[j]-'0')
		j++
	}
	if j == start || (data[start] == '0' && j-start > 1) {
		return 0, i, false
	}
	if j < len(data) && (data[j] == '.' || data[j] == 'e' || data[j] == 'E' || (data[j] >= '0' && data[j] <= '9')) {
		return 0, i, false
	}
	if neg {
		n = -n
	}
	return n, j, true
}
