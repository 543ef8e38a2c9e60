package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/podmedic/podmedic/finding"
)

// Error is one problem at one place of a rules file. Line and Column are 1-based; Path names
// the field, e.g. rules[2].action.params.bump_ratio, and is empty for a problem with the file
// as a whole.
type Error struct {
	File    string
	Line    int
	Column  int
	Path    string
	Message string
}

// Error returns "FILE:LINE:COL: field.path: message" (without the parts that are unknown).
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is every problem found in a rules file, in file order.
type Errors []*Error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so that errors.As finds an *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Limits of a rules file: its size, and the YAML nodes its decoding visits once aliases are
// expanded (so that a small file cannot expand into an enormous tree, "billion laughs": a
// 221 KB file of nested aliases once took the daemon from 72 to 462 MB).
const (
	MaxFileBytes = 1 << 20
	MaxNodes     = 100_000
)

// Load reads and validates a rules.yaml file. See ReadFile and Parse.
func Load(path string, reg Detectors) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, reg)
}

// ReadFile reads a rules file, at most MaxFileBytes+1 bytes of it: enough for Parse to refuse
// a larger one without holding it in memory.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
}

// Parse decodes and validates the contents of a rules file; file names it in messages only.
// Decoding is strict: an unknown or duplicate key anywhere is an error. Each rule's detect
// block is decoded into the args of the detector reg registers for its kind. Parse fills the
// defaults documented on Config and its fields, then validates the whole file.
//
// On failure the error is Errors, holding every problem found, in file order.
func Parse(file string, data []byte, reg Detectors) (*Config, error) {
	if reg == nil {
		reg = Specs(nil)
	}
	if len(data) > MaxFileBytes {
		return nil, Errors{{File: file, Message: fmt.Sprintf("the file is larger than %d KiB; a rules file is a few KiB", MaxFileBytes>>10)}}
	}
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, Errors{err}
	}
	d := &decoder{
		src:    newSource(file, root),
		reg:    reg,
		budget: MaxNodes,
	}
	cfg := &Config{File: file}
	d.decodeValue(root, reflect.ValueOf(cfg).Elem(), "")
	if !d.aborted {
		applyDefaults(cfg, d.src)
		validate(cfg, d.src, reg)
	}
	if errs := d.src.sorted(); len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// parseYAML parses exactly one YAML document whose top level is a mapping.
func parseYAML(file string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, emptyFile(file)
		}
		return nil, syntaxError(file, data, err)
	}
	for {
		// Further documents are an error unless they are empty (a trailing ---).
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(file, data, err)
		}
		if len(next.Content) == 0 || isNull(next.Content[0]) {
			continue
		}
		n := next.Content[0]
		return nil, &Error{File: file, Line: max(n.Line, 1), Column: max(n.Column, 1),
			Message: "a second YAML document; a rules file holds exactly one (remove the ---)"}
	}
	if len(doc.Content) == 0 {
		return nil, emptyFile(file)
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, emptyFile(file)
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Column: root.Column,
			Message: fmt.Sprintf("expected a mapping (version: 1, rules: ...) at the top level, got %s", describe(root))}
	}
	return root, nil
}

func emptyFile(file string) *Error {
	return &Error{File: file, Line: 1, Column: 1,
		Message: "the file is empty; a rules file needs at least version: 1 and one rule"}
}

// syntaxError positions a YAML parser error. The parser reports a line only, and for some
// errors the line where the enclosing block starts rather than the line with the problem
// (a misindented key is reported at its parent's line). So the problem is looked for as the
// first line whose prefix of the file fails to parse with the same message.
func syntaxError(file string, data []byte, err error) *Error {
	line, msg := splitYAMLError(err)
	if l := firstFailingLine(data, line, msg); l > line {
		line = l
	}
	if col, expr, ok := unquotedCron(data, line); ok {
		return &Error{File: file, Line: line, Column: col, Message: fmt.Sprintf(
			"invalid YAML: %s; a cron expression that starts with * must be quoted (* starts a YAML alias): cron: %q", msg, expr)}
	}
	return &Error{File: file, Line: line, Column: firstColumn(data, line), Message: "invalid YAML: " + msg}
}

var cronLine = regexp.MustCompile(`^(\s*(?:-\s+)?cron:\s*)(\*[^#]*?)\s*(?:#.*)?$`)

// unquotedCron reports whether a line is a schedule's cron key with an unquoted value that
// starts with *, and returns the value's column and text.
func unquotedCron(data []byte, line int) (int, string, bool) {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return 0, "", false
	}
	m := cronLine.FindSubmatch(bytes.TrimRight(lines[line-1], "\r"))
	if m == nil {
		return 0, "", false
	}
	return len([]rune(string(m[1]))) + 1, string(m[2]), true
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// splitYAMLError splits "yaml: line N: message" into N (1 when absent) and message.
func splitYAMLError(err error) (int, string) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			return n, msg[len(m[0]):]
		}
	}
	return 1, strings.TrimPrefix(msg, "yaml: ")
}

// firstFailingLine returns the number of the first line from line `from` on such that the
// file up to and including it fails to parse with message msg, or 0. It bisects, taking
// "fails with msg" to hold for every prefix longer than the first that does: the parser stops
// at the first problem, and the text before it is the same in every longer prefix.
func firstFailingLine(data []byte, from int, msg string) int {
	ends := []int{} // ends[i]: length of the prefix holding lines 1..i+1
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	fails := func(line int) bool { return prefixFails(data[:ends[line-1]], msg) }
	lo, hi := max(from, 1), len(ends)
	if lo > hi || !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// prefixFails reports whether data fails to parse with message msg.
func prefixFails(data []byte, msg string) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			return false
		}
		_, m := splitYAMLError(err)
		return m == msg
	}
}

// firstColumn returns the column of the first non-blank character of a line, or 1.
func firstColumn(data []byte, line int) int {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return 1
	}
	l := lines[line-1]
	trimmed := bytes.TrimLeft(l, " \t")
	if len(trimmed) == 0 {
		return 1
	}
	return len([]rune(string(l[:len(l)-len(trimmed)]))) + 1
}

// source remembers where each field of a file is, so that decoding and validation errors
// name their position, and which fields the file sets, for defaults.
type source struct {
	file   string
	root   *yaml.Node
	keys   map[string]*yaml.Node // path -> key node
	values map[string]*yaml.Node // path -> value node (for list items too)
	failed map[string]bool       // paths with a decoding error
	errs   Errors
}

func newSource(file string, root *yaml.Node) *source {
	return &source{
		file:   file,
		root:   root,
		keys:   map[string]*yaml.Node{},
		values: map[string]*yaml.Node{"": root},
		failed: map[string]bool{},
	}
}

// set reports whether the file gives path a value (null counts as not set).
func (s *source) set(path string) bool {
	n, ok := s.values[path]
	return ok && !isNull(n)
}

// node returns the value node of path, or of its nearest ancestor the file has.
func (s *source) node(path string) *yaml.Node {
	for {
		if n, ok := s.values[path]; ok {
			return n
		}
		if path == "" {
			return s.root
		}
		path = parent(path)
	}
}

// key returns the key node of path, or its value node when path is a list item.
func (s *source) key(path string) *yaml.Node {
	if n, ok := s.keys[path]; ok {
		return n
	}
	return s.node(path)
}

// errorAt records a problem with path positioned at node n.
func (s *source) errorAt(n *yaml.Node, path, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	s.errs = append(s.errs, &Error{File: s.file, Line: line, Column: col, Path: path,
		Message: fmt.Sprintf(format, args...)})
}

// failAt records a decoding problem: validation says nothing more about path or below it.
func (s *source) failAt(n *yaml.Node, path, format string, args ...any) {
	s.failed[path] = true
	s.errorAt(n, path, format, args...)
}

// hasFailed reports whether decoding path or one of its ancestors failed.
func (s *source) hasFailed(path string) bool {
	for {
		if s.failed[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parent(path)
	}
}

// sorted returns the problems in file order, without repeats.
func (s *source) sorted() Errors {
	out := make(Errors, 0, len(s.errs))
	seen := map[Error]bool{}
	for _, e := range s.errs {
		if !seen[*e] {
			seen[*e] = true
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Column < out[j].Column
	})
	return out
}

// parent returns the parent of a field path: rules[2].name -> rules[2] -> rules -> "".
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// join appends a key to a field path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// decoder decodes a YAML node tree into Go values strictly, guided by yaml struct tags, and
// records every problem with its position instead of stopping at the first.
//
// Why the walk over structs, maps and lists is ours and not yaml.v3's: Node.Decode has no
// strict mode (it builds its decoder with knownFields off; only Decoder.KnownFields turns it
// on, and only when decoding from bytes), and yaml.v3 reports unknown fields and type errors
// as strings ("line 14: field bump_ratoi not found in type rules.ActionParams", yaml.v3
// v3.0.1 decode.go) with a line but no column, no field path and no suggestion. So the walk
// follows yaml.v3's own field rules (see fields) over the node tree, keeps each node's
// position, and leaves every scalar and every yaml.Unmarshaler to yaml.v3's Node.Decode.
type decoder struct {
	src     *source
	reg     Detectors
	budget  int
	aborted bool
	active  map[*yaml.Node]bool // alias targets being decoded, to refuse cycles
}

var (
	detectType      = reflect.TypeFor[Detect]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// resolve follows aliases. It returns nil when the decoder must not go on.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.src.failAt(n, path, "unknown alias *%s", n.Value)
			return nil
		}
		n = n.Alias
	}
	return n
}

// spend accounts for one visited node; false once the budget is exhausted.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	if d.aborted {
		return false
	}
	d.budget--
	if d.budget < 0 {
		d.aborted = true
		d.src.failAt(n, path, "the document expands into too many nodes (aliases nested too deep): at most %d are read", MaxNodes)
		return false
	}
	return true
}

// enter marks a collection as being decoded; false when it already is: an alias inside it
// refers back to it.
func (d *decoder) enter(alias, target *yaml.Node, path string) bool {
	if target.Kind != yaml.MappingNode && target.Kind != yaml.SequenceNode {
		return true
	}
	if d.active == nil {
		d.active = map[*yaml.Node]bool{}
	}
	if d.active[target] {
		d.src.failAt(alias, path, "alias *%s refers to itself", alias.Value)
		return false
	}
	d.active[target] = true
	return true
}

func (d *decoder) leave(target *yaml.Node) { delete(d.active, target) }

// decodeValue decodes n into v, the field at path.
func (d *decoder) decodeValue(raw *yaml.Node, v reflect.Value, path string) {
	if !d.spend(raw, path) {
		return
	}
	n := d.resolve(raw, path)
	if n == nil || isNull(n) {
		return
	}
	if v.Kind() == reflect.Pointer {
		nv := reflect.New(v.Type().Elem())
		d.decodeValue(n, nv.Elem(), path)
		v.Set(nv)
		return
	}
	if !d.enter(raw, n, path) {
		return
	}
	defer d.leave(n)

	t := v.Type()
	if t == detectType {
		d.decodeDetect(n, v.Addr().Interface().(*Detect), path)
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.src.failAt(n, path, "%s", decodeMessage(err, t, n))
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.src.failAt(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		d.decodeFields(d.pairs(n, path), v, path, "")
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.src.failAt(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := index(path, i)
			d.src.values[p] = item
			d.decodeValue(item, s.Index(i), p)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode || t.Key().Kind() != reflect.String {
			d.src.failAt(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(t)
		for _, p := range d.pairs(n, path) {
			kp := join(path, p.key.Value)
			d.src.keys[kp], d.src.values[kp] = p.key, p.value
			k := reflect.New(t.Key()).Elem()
			k.SetString(p.key.Value)
			e := reflect.New(t.Elem()).Elem()
			d.decodeValue(p.value, e, kp)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Interface:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.src.failAt(n, path, "%s", decodeMessage(err, t, n))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			d.src.failAt(n, path, "expected %s, got %s", want(t), describe(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.src.failAt(n, path, "%s", decodeMessage(err, t, n))
		}
	}
}

// decodeMessage turns a yaml.v3 decoding error into a message without yaml.v3's own
// (line-numbered, Go-typed) wording.
func decodeMessage(err error, t reflect.Type, n *yaml.Node) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("expected %s, got %s", want(t), describe(n))
	}
	return err.Error()
}

// want names what a Go type accepts, for messages.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	}
	return "a " + t.String()
}

// describe names what a node holds, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	}
	if isNull(n) {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

type pair struct{ key, value *yaml.Node }

// pairs returns the key/value pairs of a mapping, with YAML merge keys (<<: *base) expanded:
// keys written in the mapping override merged ones. A key written twice is an error.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var own, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i], path)
		v := n.Content[i+1]
		if k == nil {
			continue
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.src.failAt(k, path, "a key must be a plain string, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.src.failAt(k, join(path, k.Value), "duplicate key (first set at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k, v})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key
			own = append(own, p)
		}
	}
	return own
}

// merge returns the pairs a merge key's value brings: a mapping or a list of mappings, the
// earlier ones taking precedence.
func (d *decoder) merge(raw *yaml.Node, path string) []pair {
	if !d.spend(raw, path) {
		return nil
	}
	n := d.resolve(raw, path)
	if n == nil || !d.enter(raw, n, path) {
		return nil
	}
	defer d.leave(n)
	switch n.Kind {
	case yaml.MappingNode:
		return d.pairs(n, path)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, item := range n.Content {
			m := d.resolve(item, path)
			if m == nil {
				continue
			}
			if m.Kind != yaml.MappingNode {
				d.src.failAt(item, path, "<< merges mappings, got %s", describe(m))
				continue
			}
			for _, p := range d.merge(item, path) {
				if !seen[p.key.Value] {
					seen[p.key.Value] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	d.src.failAt(n, path, "<< merges a mapping or a list of mappings, got %s", describe(n))
	return nil
}

// field is a struct field decoded from a YAML key.
type field struct {
	name  string
	index []int
	kind  reflect.Kind
}

// fields returns the YAML keys of a struct type in declaration order, following yaml.v3's
// rules: the yaml tag's name, else the lowercased field name; "-" and unexported fields are
// skipped; ",inline" structs contribute their own fields.
func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for _, inner := range fields(f.Type) {
				inner.index = append([]int{i}, inner.index...)
				out = append(out, inner)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name: name, index: []int{i}, kind: f.Type.Kind()})
	}
	return out
}

func fieldNames(fs []field) []string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

// decodeFields decodes mapping pairs into the struct v; keys that name no field are errors,
// with hint appended to the message.
func (d *decoder) decodeFields(ps []pair, v reflect.Value, path, hint string) {
	fs := fields(v.Type())
	byName := make(map[string]field, len(fs))
	for _, f := range fs {
		byName[f.name] = f
	}
	written := make(map[string]bool, len(ps))
	for _, p := range ps {
		written[p.key.Value] = true
	}
	for _, p := range ps {
		kp := join(path, p.key.Value)
		f, ok := byName[p.key.Value]
		if !ok {
			d.src.failAt(p.key, kp, "%s", unknownField(path, p.key.Value, fieldNames(fs), hint))
			if s := closest(p.key.Value, fieldNames(fs)); s != "" && !written[s] {
				// The key is a typo of s: do not also report s as missing.
				d.src.failed[join(path, s)] = true
			}
			continue
		}
		d.src.keys[kp], d.src.values[kp] = p.key, d.resolve(p.value, kp)
		if f.kind == reflect.String && commentedOut(p) {
			d.src.failAt(p.value, kp, "the value is empty because # starts a comment in YAML; quote it: %s: %q",
				p.key.Value, commentText(p))
			continue
		}
		d.decodeValue(p.value, v.FieldByIndex(f.index), kp)
	}
}

// commentedOut reports whether a key has no value but a comment that reads like one, as in
// `channel: #data-oncall`.
func commentedOut(p pair) bool {
	if !isNull(p.value) || p.value.Value != "" {
		return false
	}
	c := commentText(p)
	return len(c) > 1 && c[0] == '#' && c[1] != ' ' && c[1] != '#' && !strings.ContainsAny(c, " \t")
}

func commentText(p pair) string {
	if p.value.LineComment != "" {
		return p.value.LineComment
	}
	return p.key.LineComment
}

// unknownField is the message for a key no field has: a hint for secrets, else the closest
// known key.
func unknownField(path, key string, known []string, hint string) string {
	msg := "unknown field"
	if s := secretHint(path, key); s != "" {
		msg += ": " + s
	} else if s := closest(key, known); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	if hint != "" {
		msg += " " + hint
	}
	return msg
}

// secretHint explains where a secret that someone tried to put in rules.yaml is read from.
func secretHint(path, key string) string {
	k := strings.ToLower(strings.NewReplacer("-", "_", ".", "_").Replace(key))
	secret := false
	for _, w := range []string{"token", "secret", "password", "passwd", "api_key", "apikey", "credential"} {
		if strings.Contains(k, w) {
			secret = true
		}
	}
	where := strings.ToLower(path + "." + k)
	airflow := strings.Contains(where, "airflow")
	if airflow && (k == "username" || k == "user") {
		return "credentials are not read from rules.yaml; set AIRFLOW_USERNAME (or AIRFLOW_USERNAME_FILE naming a mounted file) in the environment"
	}
	if !secret {
		return ""
	}
	env := ""
	switch {
	case airflow && strings.Contains(k, "pass"):
		env = "AIRFLOW_PASSWORD (or AIRFLOW_PASSWORD_FILE naming a mounted file) with AIRFLOW_USERNAME"
	case airflow:
		env = "AIRFLOW_TOKEN (or AIRFLOW_TOKEN_FILE naming a mounted file)"
	case strings.Contains(k, "app"):
		env = "SLACK_APP_TOKEN (or SLACK_APP_TOKEN_FILE naming a mounted file)"
	case strings.Contains(k, "signing") || strings.Contains(k, "secret"):
		env = "SLACK_SIGNING_SECRET (or SLACK_SIGNING_SECRET_FILE naming a mounted file)"
	case strings.Contains(where, "slack") || strings.Contains(k, "bot") || (k == "token" && path == ""):
		env = "SLACK_BOT_TOKEN (or SLACK_BOT_TOKEN_FILE naming a mounted file)"
	default:
		return "secrets are not read from rules.yaml; set them in the environment: SLACK_BOT_TOKEN, " +
			"SLACK_APP_TOKEN, SLACK_SIGNING_SECRET, AIRFLOW_USERNAME and AIRFLOW_PASSWORD or AIRFLOW_TOKEN " +
			"(or their *_FILE variants naming mounted files)"
	}
	return "secrets are not read from rules.yaml; set " + env + " in the environment"
}

// closest returns the candidate nearest to s when it is near enough to be a likely typo.
func closest(s string, candidates []string) string {
	norm := func(x string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(x))
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		if norm(c) == norm(s) {
			return c
		}
		dist := editDistance(strings.ToLower(s), strings.ToLower(c))
		if bestDist < 0 || dist < bestDist {
			best, bestDist = c, dist
		}
	}
	limit := 1
	switch n := len(best); {
	case n > 10:
		limit = 3
	case n > 4:
		limit = 2
	}
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance: insertions, deletions,
// substitutions and transpositions of adjacent characters each cost 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return max(len(ra), len(rb))
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// decodeDetect decodes a detect block: kind selects the registered plugin, and the other keys
// are decoded strictly into the plugin's default args, which then validate themselves.
func (d *decoder) decodeDetect(n *yaml.Node, det *Detect, path string) {
	if n.Kind != yaml.MappingNode {
		d.src.failAt(n, path, "expected a mapping (kind: and the kind's thresholds), got %s", describe(n))
		return
	}
	var rest []pair
	var kind *pair
	for _, p := range d.pairs(n, path) {
		if p.key.Value == "kind" {
			kind = &p
			continue
		}
		rest = append(rest, p)
	}
	if kind == nil {
		return // validate reports the missing kind
	}
	kp := join(path, "kind")
	kv := d.resolve(kind.value, kp)
	if kv == nil {
		return
	}
	d.src.keys[kp], d.src.values[kp] = kind.key, kv
	if kv.Kind != yaml.ScalarNode || isNull(kv) {
		d.src.failAt(kv, kp, "expected a kind name, got %s (registered kinds: %s)", describe(kv), joinKinds(d.reg.Kinds()))
		return
	}
	det.Kind = finding.Kind(kv.Value)
	plugin, ok := d.reg.Spec(det.Kind)
	if !ok {
		d.src.failAt(kv, kp, "%s", unknownKind(det.Kind, d.reg.Kinds()))
		return
	}

	args := plugin.NewArgs()
	av := reflect.ValueOf(args)
	var names []string
	if av.Kind() == reflect.Pointer && !av.IsNil() && av.Elem().Kind() == reflect.Struct {
		names = fieldNames(fields(av.Elem().Type()))
	}
	hint := fmt.Sprintf("(%s has no thresholds)", det.Kind)
	if len(names) > 0 {
		hint = fmt.Sprintf("(valid for %s: %s)", det.Kind, strings.Join(names, ", "))
	}
	if names != nil {
		d.decodeFields(rest, av.Elem(), path, hint)
	} else {
		for _, p := range rest {
			d.src.failAt(p.key, join(path, p.key.Value), "%s", unknownField(path, p.key.Value, nil, hint))
		}
	}
	det.Args = args
	if d.aborted {
		return
	}
	for _, fe := range args.Validate() {
		if fe.Field == "" {
			d.src.errorAt(d.src.key(path), path, "%s", fe.Message)
			continue
		}
		p := join(path, fe.Field)
		if d.src.hasFailed(p) {
			continue
		}
		d.src.errorAt(d.src.node(p), p, "%s", fe.Message)
	}
}

func unknownKind(k finding.Kind, registered []finding.Kind) string {
	names := make([]string, len(registered))
	for i, r := range registered {
		names[i] = string(r)
	}
	if k.Valid() {
		return fmt.Sprintf("no detector is registered for kind %s (registered kinds: %s)", k, joinKinds(registered))
	}
	msg := fmt.Sprintf("unknown kind %q", string(k))
	if s := closest(string(k), names); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	return msg + "; registered kinds: " + joinKinds(registered)
}

func joinKinds(ks []finding.Kind) string {
	if len(ks) == 0 {
		return "none"
	}
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// The defaults Parse fills in for keys a file leaves out (or sets to null). They are
// documented in the root rules.yaml too.
const (
	DefaultCluster        = "default"
	DefaultCooldown       = 30 * time.Minute
	DefaultProposalTTL    = 30 * time.Minute
	DefaultOverrideTTL    = 30 * 24 * time.Hour
	DefaultNATSMaxMemory  = "64Mi"
	DefaultNATSMaxStore   = "1Gi"
	DefaultSlackAPIURL    = "https://slack.com/api/"
	DefaultAirflowVersion = "v1"
	DefaultAirflowTimeout = 10 * time.Second
	DefaultSeverity       = finding.SeverityWarning
	DefaultWorkload       = WorkloadAny
	DefaultMode           = finding.ModeApprove

	DefaultBumpRatio            = 1.5
	DefaultMinBump              = "256Mi"
	DefaultMaxLimit             = "16Gi"
	DefaultMaxLimitRequestRatio = 1.5
	DefaultOnlyFailed           = true

	DefaultTimezone     = "UTC"
	DefaultSweepBudget  = 10
	DefaultDigestWindow = 24 * time.Hour
	DefaultDigestTop    = 10
)

// applyDefaults fills the keys the file does not set.
func applyDefaults(c *Config, src *source) {
	if !src.set("cluster") {
		c.Cluster = DefaultCluster
	}
	if !src.set("cooldown") {
		c.Cooldown = Duration{DefaultCooldown}
	}
	if !src.set("proposals.ttl") {
		c.Proposals.TTL = Duration{DefaultProposalTTL}
	}
	if !src.set("overrides.ttl") {
		c.Overrides.TTL = Duration{DefaultOverrideTTL}
	}
	if !src.set("nats.max_memory") {
		c.NATS.MaxMemory = MustQuantity(DefaultNATSMaxMemory)
	}
	if !src.set("nats.max_store") {
		c.NATS.MaxStore = MustQuantity(DefaultNATSMaxStore)
	}
	if !src.set("slack.api_url") {
		c.Slack.APIURL = DefaultSlackAPIURL
	}
	if c.Slack.SocketMode == nil {
		c.Slack.SocketMode = ptr(true)
	}
	if c.Evidence.LogTails == nil {
		c.Evidence.LogTails = ptr(true)
	}
	if !src.set("airflow.api_version") {
		c.Airflow.APIVersion = DefaultAirflowVersion
	}
	if !src.set("airflow.timeout") {
		c.Airflow.Timeout = Duration{DefaultAirflowTimeout}
	}
	for i := range c.Rules {
		r, path := &c.Rules[i], index("rules", i)
		if !src.set(join(path, "severity")) {
			r.Severity = DefaultSeverity
		}
		if !src.set(join(path, "match.workload")) {
			r.Match.Workload = DefaultWorkload
		}
		if a := r.Action; a != nil {
			actionDefaults(&a.Type, &a.Mode, &a.Params, join(path, "action"), src)
		}
	}
	for i := range c.Schedules {
		s, path := &c.Schedules[i], index("schedules", i)
		if sw := s.Sweep; sw != nil {
			if !src.set(join(path, "sweep.match.workload")) {
				sw.Match.Workload = DefaultWorkload
			}
			if !src.set(join(path, "sweep.budget")) {
				sw.Budget = DefaultSweepBudget
			}
			actionDefaults(&sw.Action.Type, &sw.Action.Mode, &sw.Action.Params, join(path, "sweep.action"), src)
		}
		if d := s.Digest; d != nil {
			if !src.set(join(path, "digest.window")) {
				d.Window = Duration{DefaultDigestWindow}
			}
			if !src.set(join(path, "digest.top")) {
				d.Top = DefaultDigestTop
			}
		}
	}
}

// actionDefaults fills an action block's mode and its type's params (a rule's or a sweep's).
func actionDefaults(typ *finding.ActionType, mode *finding.Mode, p *ActionParams, path string, src *source) {
	if !src.set(join(path, "mode")) {
		*mode = DefaultMode
		if *typ == finding.ActionNotify {
			*mode = finding.ModeNotify
		}
	}
	switch *typ {
	case finding.ActionProposeMemoryLimit:
		if p.BumpRatio == nil {
			p.BumpRatio = ptr(DefaultBumpRatio)
		}
		if p.MinBump == nil {
			p.MinBump = ptr(MustQuantity(DefaultMinBump))
		}
		if p.MaxLimit == nil {
			p.MaxLimit = ptr(MustQuantity(DefaultMaxLimit))
		}
		if p.MaxLimitRequestRatio == nil {
			p.MaxLimitRequestRatio = ptr(DefaultMaxLimitRequestRatio)
		}
	case finding.ActionAirflowClearTask:
		if p.OnlyFailed == nil {
			p.OnlyFailed = ptr(DefaultOnlyFailed)
		}
	}
}

func ptr[T any](v T) *T { return &v }
