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
