package offer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/obol/obol/api/v1alpha1"
)

// MaxFileSize bounds an offer.yaml: a real one is a few hundred bytes.
const MaxFileSize = 1 << 20

// DecodeError is a problem Decode found, at a line of a file.
type DecodeError struct {
	File    string
	Line    int    // 1-based; 0 when unknown
	Field   string // JSON path, e.g. spec.payment.price; "" for the file as a whole
	Problem string
}

// Error renders "file:line: field: problem".
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// metadataFields are the metadata fields an offer.yaml may set; the rest are set by the
// cluster and have no place in git.
var metadataFields = []string{"name", "namespace", "labels", "annotations"}

var (
	offerType  = reflect.TypeFor[v1alpha1.ServiceOffer]()
	objectMeta = reflect.TypeFor[metav1.ObjectMeta]()
)

// Decode parses an offer.yaml strictly: it must hold exactly one YAML document, a
// ServiceOffer of apiVersion obol.org/v1alpha1, with no unknown fields, no values of the wrong
// type (an unquoted price such as 0.001 is a number, not a string), no duplicate keys, no
// aliases, no status and no metadata beyond name, namespace, labels and annotations. Errors
// name the file, the line and the field, e.g.
//
//	applications/sell-http/x/offer.yaml:7: spec.payment.prise: unknown field; did you mean "price"?
//
// When there are several problems the error joins them (errors.As finds a *DecodeError).
// Decode neither defaults nor validates the offer: see Default and Validate.
func Decode(file string, data []byte) (*v1alpha1.ServiceOffer, error) {
	return decode(file, data, false)
}

func decode(file string, data []byte, lenient bool) (*v1alpha1.ServiceOffer, error) {
	fail := func(line int, field, format string, args ...any) error {
		return &DecodeError{File: file, Line: line, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	if len(data) > MaxFileSize {
		return nil, fail(0, "", "is %d bytes, more than %d: not an offer.yaml", len(data), MaxFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(0, "", "is empty: it should hold one ServiceOffer")
		}
		return nil, yamlError(file, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, fail(extra.Line, "", "a second YAML document starts here: an offer.yaml holds exactly one ServiceOffer; remove the \"---\" and what follows, or split the file")
	case !errors.Is(err, io.EOF):
		return nil, yamlError(file, err)
	}

	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "", "is %s, not a ServiceOffer: expected a mapping with apiVersion, kind, metadata and spec", describe(root))
	}

	d := &decoder{file: file}
	if errs := d.checkTypeMeta(root); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	tree := d.value(root, offerType, "")
	if len(d.errs) > 0 {
		err := errors.Join(d.errs...)
		if !lenient {
			return nil, err
		}
		o, derr := fromTree(file, tree)
		if derr != nil {
			return nil, err
		}
		return o, &DroppedError{Err: err}
	}
	return fromTree(file, tree)
}

// DroppedError is what DecodeRepair left out of an offer.yaml: the fields Decode refuses.
type DroppedError struct{ Err error }

func (e *DroppedError) Error() string { return e.Err.Error() }
func (e *DroppedError) Unwrap() error { return e.Err }

// DecodeRepair decodes an offer.yaml Decode refuses for its fields (an unknown or mistyped
// one, a duplicate key), leaving those fields out, so `sell update` can repair a hand edit. It
// returns the offer and a *DroppedError naming what was left out; a file that is not YAML, or
// not a ServiceOffer at all, is an error as with Decode.
func DecodeRepair(file string, data []byte) (*v1alpha1.ServiceOffer, error) {
	return decode(file, data, true)
}

func fromTree(file string, tree any) (*v1alpha1.ServiceOffer, error) {
	fail := func(format string, args ...any) error {
		return &DecodeError{File: file, Problem: fmt.Sprintf(format, args...)}
	}

	// The tree now matches the Go types exactly; decoding it is a formality, done strictly so
	// that any disagreement between the walk above and the types is an error, not a loss.
	j, err := json.Marshal(tree)
	if err != nil {
		return nil, fail("cannot be converted: %v", err)
	}
	var o v1alpha1.ServiceOffer
	jd := json.NewDecoder(bytes.NewReader(j))
	jd.DisallowUnknownFields()
	if err := jd.Decode(&o); err != nil {
		return nil, fail("cannot be decoded: %v", err)
	}
	return &o, nil
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// yamlError turns a YAML syntax error into a DecodeError with its line.
func yamlError(file string, err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &DecodeError{File: file, Line: line, Problem: "not valid YAML: " + msg}
}

type decoder struct {
	file string
	errs []error
}

func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &DecodeError{File: d.file, Line: line, Field: field, Problem: fmt.Sprintf(format, args...)})
}

// checkTypeMeta checks apiVersion and kind first: when a file is not a ServiceOffer, any
// other complaint would be noise.
func (d *decoder) checkTypeMeta(root *yaml.Node) []error {
	want := map[string]string{"apiVersion": v1alpha1.APIVersion, "kind": v1alpha1.ServiceOfferKind}
	found := map[string]bool{}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		w, ok := want[k.Value]
		if !ok || k.Kind != yaml.ScalarNode || found[k.Value] {
			continue
		}
		found[k.Value] = true
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Value != w {
			errs = append(errs, &DecodeError{File: d.file, Line: v.Line, Field: k.Value, Problem: fmt.Sprintf("is %s, not %s: offer.yaml holds a %s", describeValue(v), w, v1alpha1.ServiceOfferKind)})
		}
	}
	for _, k := range []string{"apiVersion", "kind"} {
		if !found[k] {
			errs = append(errs, &DecodeError{File: d.file, Line: root.Line, Field: k, Problem: fmt.Sprintf("is missing: add %s: %s", k, want[k])})
		}
	}
	return errs
}

// value checks node n against Go type t and returns the JSON value it stands for: a
// map[string]any, []any, string, json.Number, bool or nil. Problems are recorded in d.errs.
func (d *decoder) value(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind == yaml.AliasNode {
		d.fail(n, path, "YAML aliases (*%s) are not supported in offer.yaml: write the value out", n.Value)
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Tag != "" && !strings.HasPrefix(n.Tag, "!!") {
		d.fail(n, path, "has the custom YAML tag %s, which offer.yaml does not support: remove it", n.Tag)
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return d.structValue(n, t, path)
	case reflect.Map:
		return d.mapValue(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describeValue(n))
			return nil
		}
		if len(n.Content) == 0 {
			return nil // an empty list is no list: Encode omits it
		}
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			out = append(out, d.value(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)))
		}
		return out
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			d.fail(n, path, "expected a string, got %s%s", describeValue(n), quoteHint(n))
			return nil
		}
		return n.Value
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "expected true or false, got %s", describeValue(n))
			return nil
		}
		return b
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			hint := ""
			if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
				if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
					hint = "; write it without quotes"
				}
			}
			d.fail(n, path, "expected an integer, got %s%s", describeValue(n), hint)
			return nil
		}
		if bits := t.Bits(); bits < 64 && (i < -(1<<(bits-1)) || i > 1<<(bits-1)-1) {
			d.fail(n, path, "%d does not fit a %d-bit integer", i, t.Bits())
			return nil
		}
		return json.Number(strconv.FormatInt(i, 10))
	default:
		d.fail(n, path, "has a type offer.yaml cannot hold")
		return nil
	}
}

func (d *decoder) structValue(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describeValue(n))
		return nil
	}
	fields := jsonFields(t)
	out := map[string]any{}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, ok := d.key(k, path)
		if !ok {
			continue
		}
		field := join(path, name)
		if line, dup := seen[name]; dup {
			d.fail(k, field, "duplicate key (first on line %d): remove one", line)
			continue
		}
		seen[name] = k.Line
		if path == "" && name == "status" {
			d.fail(k, field, "is written by the cluster, not offer.yaml: remove it")
			continue
		}
		if t == objectMeta && !slices.Contains(metadataFields, name) {
			d.fail(k, field, "is not kept in offer.yaml (it holds only metadata.%s): remove it", strings.Join(metadataFields, ", metadata."))
			continue
		}
		ft, ok := fields[name]
		if !ok {
			d.fail(k, field, "unknown field%s", suggestion(name, slices.Sorted(maps.Keys(fields))))
			continue
		}
		out[name] = d.value(v, ft, field)
	}
	return out
}

func (d *decoder) mapValue(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describeValue(n))
		return nil
	}
	if len(n.Content) == 0 {
		return nil // an empty map is no map: Encode omits it
	}
	out := map[string]any{}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, ok := d.key(k, path)
		if !ok {
			continue
		}
		field := fmt.Sprintf("%s[%q]", path, name)
		if line, dup := seen[name]; dup {
			d.fail(k, field, "duplicate key (first on line %d): remove one", line)
			continue
		}
		seen[name] = k.Line
		out[name] = d.value(v, t.Elem(), field)
	}
	return out
}

// key checks that a mapping key is a plain string.
func (d *decoder) key(k *yaml.Node, path string) (string, bool) {
	switch {
	case k.Kind == yaml.AliasNode:
		d.fail(k, path, "YAML aliases (*%s) are not supported in offer.yaml: write the key out", k.Value)
	case k.Kind != yaml.ScalarNode:
		d.fail(k, path, "has a key that is %s: keys must be strings", describe(k))
	case k.Tag == "!!merge":
		d.fail(k, path, "YAML merge keys (<<) are not supported in offer.yaml: write the fields out")
	case k.Tag != "!!str":
		d.fail(k, path, "has the key %s, which is %s: quote it to make it a string", k.Value, describe(k))
	default:
		return k.Value, true
	}
	return "", false
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonFields maps the JSON names of a struct's fields, including those of inline embedded
// structs, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && (name == "" || strings.Contains(","+opts+",", ",inline,")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// suggestion returns `; did you mean "x"?` for the closest known name, or "".
func suggestion(name string, known []string) string {
	best, bestDist := "", 0
	for _, k := range known {
		dist := editDistance(strings.ToLower(name), strings.ToLower(k))
		if best == "" || dist < bestDist {
			best, bestDist = k, dist
		}
	}
	limit := 2
	if len(name) <= 3 {
		limit = 1
	}
	if best == "" || bestDist > limit {
		return "; known fields: " + strings.Join(known, ", ")
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
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
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// describe names the kind of a node: "a mapping", "a list", "a number", ...
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.Tag {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	case "!!timestamp":
		return "a date"
	case "!!binary":
		return "binary data"
	}
	return "a " + strings.TrimPrefix(n.Tag, "!!")
}

// describeValue is describe plus the scalar's text: `the number 0.001`.
func describeValue(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return describe(n)
	}
	v := n.Value
	if len(v) > 60 {
		v = v[:60] + "..."
	}
	if n.Tag == "!!str" {
		return fmt.Sprintf("the string %q", v)
	}
	return fmt.Sprintf("%s %s", strings.Replace(describe(n), "a ", "the ", 1), v)
}

// quoteHint suggests quoting a scalar that YAML read as a number, boolean or date where a
// string was expected (prices must be quoted: perRequest: "0.001").
func quoteHint(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Tag == "!!str" {
		return ""
	}
	return fmt.Sprintf("; quote it: %q", n.Value)
}

// Encode writes an offer as canonical offer.yaml: keys sorted, two-space indentation,
// kubectl-style lists, no status, and of metadata only name, namespace, labels and annotations
// (what the cluster sets has no place in git). apiVersion and kind are filled in when empty.
// The output is byte-stable, and Decode(Encode(o)) returns o (less what Encode leaves out).
//
// Strings are quoted whenever a YAML 1.1 or 1.2 reader could take them for something else
// ("yes", "0o17", "<<", "2026-01-02", ...), so sigs.k8s.io/yaml (kubectl), yaml.v3
// (kustomize, Flux) and Decode all read the file the same way. The YAML is written by
// yaml.v3 rather than sigs.k8s.io/yaml, whose YAML 1.1 emitter leaves some of those plain.
func Encode(o *v1alpha1.ServiceOffer) ([]byte, error) {
	if o == nil {
		return nil, errors.New("encode offer: nil offer")
	}
	c := v1alpha1.ServiceOffer{
		TypeMeta: o.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:        o.Name,
			Namespace:   o.Namespace,
			Labels:      o.Labels,
			Annotations: o.Annotations,
		},
		Spec: o.Spec,
	}
	if c.APIVersion == "" {
		c.APIVersion = v1alpha1.APIVersion
	}
	if c.Kind == "" {
		c.Kind = v1alpha1.ServiceOfferKind
	}
	if c.APIVersion != v1alpha1.APIVersion || c.Kind != v1alpha1.ServiceOfferKind {
		return nil, fmt.Errorf("encode offer %s: %s/%s is not a %s/%s", o.Name, c.APIVersion, c.Kind, v1alpha1.APIVersion, v1alpha1.ServiceOfferKind)
	}
	// The JSON form is the API's form: field names, omitempty and all.
	j, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode offer %s: %w", o.Name, err)
	}
	var m map[string]any
	jd := json.NewDecoder(bytes.NewReader(j))
	jd.UseNumber()
	if err := jd.Decode(&m); err != nil {
		return nil, fmt.Errorf("encode offer %s: %w", o.Name, err)
	}
	// Drop what encoding/json writes for empty structs: status: {} and
	// metadata.creationTimestamp: null.
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
		if len(md) == 0 {
			delete(m, "metadata")
		}
	}
	root, err := yamlNode(m)
	if err != nil {
		return nil, fmt.Errorf("encode offer %s: %w", o.Name, err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encode offer %s: %w", o.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode offer %s: %w", o.Name, err)
	}
	return buf.Bytes(), nil
}

// yamlNode converts a JSON value (decoded with UseNumber) into YAML nodes with mapping keys in
// byte order. Strings are left to the encoder, which quotes any that would read back as
// another type.
func yamlNode(v any) (*yaml.Node, error) {
	switch v := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			kn, err := scalarNode(k)
			if err != nil {
				return nil, err
			}
			vn, err := yamlNode(v[k])
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, kn, vn)
		}
		return n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range v {
			en, err := yamlNode(e)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, en)
		}
		return n, nil
	case string:
		return scalarNode(v)
	case json.Number:
		i, err := strconv.ParseInt(v.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s is not an integer", v)
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(i, 10)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON value %T", v)
}

// plainSafe matches strings that read back as the same string when written plain, under
// YAML 1.1 (sigs.k8s.io/yaml, kubectl) and YAML 1.2 (yaml.v3, kustomize) alike: they start with
// a letter, "/" or "_", and use no character that YAML gives a meaning to.
var plainSafe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z/_][A-Za-z0-9 _./:@+-]*$`) })

// yaml11Words are the plain words YAML 1.1 reads as booleans or null.
var yaml11Words = []string{
	"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
	"true", "True", "TRUE", "false", "False", "FALSE",
	"on", "On", "ON", "off", "Off", "OFF",
	"null", "Null", "NULL",
}

// scalarNode is a string scalar: plain when that is unambiguous (see plainSafe), a literal
// block when it spans lines (and has no tab), double-quoted otherwise. The emitter falls back to double quotes
// when a literal block cannot hold the string exactly.
func scalarNode(s string) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	switch {
	case strings.Contains(s, "\n") && !strings.Contains(s, "\t"):
		// A tab in a literal block is content, but yaml.v3 reads a line that starts with one
		// as bad indentation: multi-line strings with tabs go double-quoted.
		n.Style = yaml.LiteralStyle
	case plainSafe().MatchString(s) && !slices.Contains(yaml11Words, s) &&
		!strings.HasSuffix(s, " ") && !strings.HasSuffix(s, ":") &&
		!strings.Contains(s, ": ") && !strings.Contains(s, " #"):
	default:
		n.Style = yaml.DoubleQuotedStyle
	}
	return n, nil
}
