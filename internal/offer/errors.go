package offer

import (
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem with one field of an offer.
type FieldError struct {
	// Field is the JSON path of the field: metadata.name, spec.payment.payTo,
	// spec.registration.skills[2], spec.provenance["key"], ...
	Field string
	// Value is the offending value as written ("" when the field is missing).
	Value string
	// Problem says what is wrong, phrased to follow the quoted value: "is not a 20-byte hex
	// address".
	Problem string
	// Fix says what to do about it.
	Fix string
}

// maxShownValue bounds how much of a value Error prints.
const maxShownValue = 120

// Error renders the problem on one line, e.g.
//
//	spec.payment.payTo: "0x12" is not a 20-byte hex address: give 0x followed by 40 hex digits
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	b.WriteString(": ")
	if e.Value != "" {
		v := e.Value
		if len(v) > maxShownValue {
			v = v[:maxShownValue] + "..."
		}
		fmt.Fprintf(&b, "%q ", v)
	}
	b.WriteString(e.Problem)
	if e.Fix != "" {
		b.WriteString(": ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Errors is every problem Validate found, sorted by Field. Get it from an error with
// errors.As.
type Errors []*FieldError

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Fields returns the fields with problems, in order (handy in tests and summaries).
func (es Errors) Fields() []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Field
	}
	return out
}

// errorList collects FieldErrors during validation.
type errorList struct{ errs Errors }

func (l *errorList) add(field, value, problem, fix string) {
	l.errs = append(l.errs, &FieldError{Field: field, Value: value, Problem: problem, Fix: fix})
}

// result sorts the errors by field (stable, so one field's problems keep their order) and
// returns nil when there are none.
func (l *errorList) result() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *FieldError) int { return strings.Compare(a.Field, b.Field) })
	return l.errs
}
