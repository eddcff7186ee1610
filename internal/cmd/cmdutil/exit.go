package cmdutil

import (
	"errors"
	"fmt"
)

// Exit codes follow `flux diff`: 0 nothing to do, 1 a difference was found (dry runs, checks,
// failed validation), 2 and above an error.
const (
	ExitOK      = 0
	ExitDiff    = 1
	ExitFailure = 2
)

// ExitError carries an exit code. Silent ones have already said what they had to.
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ErrDiff ends a command with exit code 1 after it printed the difference.
var ErrDiff = &ExitError{Code: ExitDiff, Silent: true}

// ExitCode maps an error to the process's exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitFailure
}

// IsSilent reports whether err was already reported to the user.
func IsSilent(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && ee.Silent
}
