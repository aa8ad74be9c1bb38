package scenarios

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/pgdrill/pgdrill/harness/objective"
)

// Problem is one thing wrong with a scenario file, located the way editors and CI logs expect.
type Problem struct {
	// File is the file the scenario came from.
	File string `json:"file"`
	// Line and Column are 1-based; Column is 0 when unknown.
	Line   int `json:"line"`
	Column int `json:"column,omitempty"`
	// Field is the path of the field, e.g. spec.incident.fraction or spec.faults[1].kind;
	// empty for problems of the file as a whole (YAML syntax).
	Field string `json:"field,omitempty"`
	// Message says what is wrong and, where it can, how to fix it.
	Message string `json:"message"`
}

// String writes the problem as FILE:LINE:COLUMN: FIELD: MESSAGE.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	fmt.Fprintf(&b, ":%d", p.Line)
	if p.Column > 0 {
		fmt.Fprintf(&b, ":%d", p.Column)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError is every problem of one scenario file. The CLI maps it to exit code 2
// (invalid input): nothing was started.
type ValidationError struct {
	Problems []Problem
}

// Error writes one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// pos is a place in the file.
type pos struct{ line, col int }

// decoder turns a YAML document into a Scenario strictly, collecting every problem instead of
// stopping at the first, and remembering where each field was written.
type decoder struct {
	file string
	// dir is the directory files the scenario names are relative to; empty when the scenario
	// was not read from disk, and they are not looked for.
	dir string
	// set holds where each field path the file sets was written: absent means "apply the
	// default", and validation problems point at it.
	set      map[string]pos
	problems []Problem
	// broken holds the paths that failed to decode, so that validation does not pile a second,
	// derived complaint on them.
	broken []string
}

func newDecoder(file, dir string) *decoder {
	return &decoder{file: file, dir: dir, set: map[string]pos{"": {1, 1}}}
}

// report records a problem at a position.
func (d *decoder) report(at pos, field, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: at.line, Column: at.col, Field: field,
		Message: fmt.Sprintf(format, args...)})
}

// add records a decoding problem: the field keeps its default, which validation then ignores.
func (d *decoder) add(at pos, field, format string, args ...any) {
	d.report(at, field, format, args...)
	d.broken = append(d.broken, field)
}

// has reports whether the file sets the field at path.
func (d *decoder) has(path string) bool {
	_, ok := d.set[path]
	return ok
}

// at returns where path was written, or where its nearest written ancestor was: a missing field
// is reported at the section that lacks it.
func (d *decoder) at(path string) pos {
	for {
		if p, ok := d.set[path]; ok {
			return p
		}
		path = parent(path)
	}
}

// parent strips the last element of a field path: spec.faults[1].kind → spec.faults[1] →
// spec.faults → spec → "".
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// related reports whether a and b are the same field or one contains the other.
func related(a, b string) bool {
	within := func(inner, outer string) bool {
		return inner == outer || outer == "" ||
			strings.HasPrefix(inner, outer) && (inner[len(outer)] == '.' || inner[len(outer)] == '[')
	}
	return within(a, b) || within(b, a)
}

// invalid records a validation problem at path, unless a problem of a related field was already
// recorded (a field that failed to decode keeps its default, which may look wrong too).
func (d *decoder) invalid(path, format string, args ...any) {
	if slices.ContainsFunc(d.broken, func(b string) bool { return related(b, path) }) {
		return
	}
	d.report(d.at(path), path, format, args...)
}

// sorted returns the problems in file order.
func (d *decoder) sorted() []Problem {
	slices.SortStableFunc(d.problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return d.problems
}

// document parses data and decodes its single document into s. It returns false when there
// was no document to decode (a syntax error, an empty file), which leaves nothing to validate.
func (d *decoder) document(data []byte, s *Scenario) bool {
	// YAML breaks lines at \r\n, \r and \n alike, but go-yaml counts a \r\n after a comment as
	// two lines: parsed with \n alone, every problem is reported on its own line.
	data = bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		at := pos{1, 0}
		msg := err.Error()
		var ye yaml.Error
		if errors.As(err, &ye) {
			msg = ye.GetMessage()
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				at = pos{tk.Position.Line, tk.Position.Column}
			}
		}
		d.add(at, "", "invalid YAML: %s", msg)
		return false
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		d.add(pos{1, 0}, "", "empty file; a scenario starts with apiVersion: %s", APIVersion)
		return false
	}
	if len(docs) > 1 {
		at := position(docs[1].Body)
		if docs[1].Start != nil {
			at = pos{docs[1].Start.Position.Line, docs[1].Start.Position.Column}
		}
		d.add(at, "", "%d YAML documents; a scenario file holds exactly one", len(docs))
	}
	return d.value(docs[0].Body, reflect.ValueOf(s).Elem(), "")
}

func position(n ast.Node) pos {
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return pos{1, 0}
	}
	return pos{tk.Position.Line, tk.Position.Column}
}

var durationType = reflect.TypeFor[Duration]()

// describe names a node's type the way a person reads YAML.
func describe(n ast.Node) string {
	switch n.Type() {
	case ast.StringType, ast.LiteralType:
		return fmt.Sprintf("the string %q", n.GetToken().Value)
	case ast.IntegerType, ast.FloatType, ast.InfinityType, ast.NanType:
		return "the number " + n.GetToken().Value
	case ast.BoolType:
		return "the boolean " + n.GetToken().Value
	case ast.MappingType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	default:
		return n.Type().String()
	}
}

// value decodes node into v, reporting problems against path. It returns whether it succeeded.
func (d *decoder) value(n ast.Node, v reflect.Value, path string) bool {
	at := position(n)
	fail := func(format string, args ...any) bool {
		d.add(at, path, format, args...)
		return false
	}
	switch n.Type() {
	case ast.AnchorType, ast.AliasType, ast.TagType, ast.MergeKeyType:
		return fail("anchors, aliases, tags and merge keys are not supported in scenario files; write the value out")
	case ast.NullType:
		switch v.Kind() {
		case reflect.Struct, reflect.Slice, reflect.Map, reflect.Pointer:
			return true // an empty section: its fields get their defaults
		}
		return fail("has no value; give one or remove the key")
	}
	switch {
	case v.Type() == durationType:
		return d.duration(n, v, fail)
	case v.Kind() == reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		if !d.value(n, elem.Elem(), path) {
			return false
		}
		v.Set(elem)
		return true
	case v.Kind() == reflect.Struct:
		m, ok := n.(*ast.MappingNode)
		switch {
		case !ok && path == "": // the document itself: there is no field to name
			return fail("a scenario file is a mapping of fields starting with apiVersion: %s, got %s", APIVersion, describe(n))
		case !ok:
			return fail("must be a mapping of fields, got %s", describe(n))
		}
		d.fields(m, v, path)
		return true
	case v.Kind() == reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			return fail("must be a list, got %s", describe(n))
		}
		out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		good := true
		for i, item := range seq.Values {
			p := fmt.Sprintf("%s[%d]", path, i)
			if d.value(item, out.Index(i), p) {
				d.set[p] = position(item)
			} else {
				good = false
			}
		}
		v.Set(out)
		return good
	case v.Kind() == reflect.Map:
		if n.Type() != ast.MappingType {
			return fail("must be a mapping, got %s", describe(n))
		}
		m := reflect.New(v.Type())
		if err := yaml.NodeToValue(n, m.Interface()); err != nil {
			return fail("%v", err)
		}
		v.Set(m.Elem())
		return true
	}
	return d.scalar(n, v, fail)
}

// scalar decodes a string, number or boolean, refusing every conversion YAML would do silently.
func (d *decoder) scalar(n ast.Node, v reflect.Value, fail func(string, ...any) bool) bool {
	switch v.Kind() {
	case reflect.String:
		switch x := n.(type) {
		case *ast.StringNode:
			v.SetString(x.Value)
		case *ast.LiteralNode: // a block scalar, | or >: its text without the indicator
			v.SetString(x.Value.Value)
		default:
			return fail("must be a string, got %s (quote it if it is meant as text)", describe(n))
		}
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			return fail("must be true or false, got %s", describe(n))
		}
		v.SetBool(b.Value)
	case reflect.Int, reflect.Int64, reflect.Uint64:
		in, ok := n.(*ast.IntegerNode)
		if !ok {
			return fail("must be a whole number, got %s", describe(n))
		}
		switch x := in.Value.(type) {
		case int64:
			if v.Kind() == reflect.Uint64 {
				if x < 0 {
					return fail("must not be negative, got %d", x)
				}
				v.SetUint(uint64(x))
			} else {
				if v.OverflowInt(x) {
					return fail("%d is too large", x)
				}
				v.SetInt(x)
			}
		case uint64:
			switch {
			case v.Kind() == reflect.Uint64:
				v.SetUint(x)
			case x > math.MaxInt64 || v.OverflowInt(int64(x)):
				return fail("%d is too large", x)
			default:
				v.SetInt(int64(x))
			}
		}
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.GetToken().Value, 64)
		if (n.Type() != ast.IntegerType && n.Type() != ast.FloatType) || err != nil || math.IsInf(f, 0) {
			return fail("must be a number, got %s", describe(n))
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("scenarios: no decoder for %s", v.Type()))
	}
	return true
}

// duration decodes a Duration: "30s", "1h30m", or a bare 0.
func (d *decoder) duration(n ast.Node, v reflect.Value, fail func(string, ...any) bool) bool {
	switch n.Type() {
	case ast.IntegerType:
		if n.GetToken().Value != "0" {
			return fail("a duration needs a unit: write e.g. %ss", n.GetToken().Value)
		}
		v.SetInt(0)
		return true
	case ast.StringType:
		x, err := time.ParseDuration(n.GetToken().Value)
		if err != nil {
			return fail("must be a duration like 500ms, 30s, 15m or 1h30m, got %s", describe(n))
		}
		v.SetInt(int64(x))
		return true
	}
	return fail("must be a duration like 500ms, 30s, 15m or 1h30m, got %s", describe(n))
}

// fields decodes a mapping into a struct: unknown and repeated keys are problems, every other
// field is decoded on its own so that one bad field does not hide the next.
func (d *decoder) fields(m *ast.MappingNode, v reflect.Value, path string) {
	t := v.Type()
	index := map[string]int{}
	var known []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		index[name] = i
		known = append(known, name)
	}
	seen := map[string]pos{}
	for _, kv := range m.Values {
		at := position(kv.Key)
		key := kv.Key.GetToken().Value
		name := key
		if strings.TrimSpace(name) == "" {
			name = strconv.Quote(name) // a blank key, quoted so that its problem still names it
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		if first, dup := seen[key]; dup {
			d.add(at, p, "given twice (first on line %d); keep one", first.line)
			continue
		}
		seen[key] = at
		i, ok := index[key]
		if !ok {
			d.add(at, p, "unknown field%s; fields here: %s", objective.DidYouMean(key, known),
				strings.Join(known, ", "))
			continue
		}
		if d.value(kv.Value, v.Field(i), p) {
			d.set[p] = at
		}
	}
}
