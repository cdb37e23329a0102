package filter

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
)

// Error is a bad expression: where in the source, and what is wrong (in
// the terms of the expression language, for the person who wrote it).
type Error struct {
	Src    string
	Offset int // byte offset of the problem in Src, from 0
	Line   int // from 1
	Column int // in characters, from 1
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("filter %q: at %d:%d: %s", e.Src, e.Line, e.Column, e.Msg)
}

// compileError turns CEL's issues into an Error at the first problem.
func compileError(src string, iss *cel.Issues) error {
	errs := iss.Errors()
	if len(errs) == 0 {
		return &Error{Src: src, Line: 1, Column: 1, Msg: iss.Err().Error()}
	}
	e := errs[0]
	line, col := e.Location.Line(), e.Location.Column() // col from 0, in code points
	if line < 1 {
		line = 1
	}
	if col < 0 {
		col = 0
	}
	msg := e.Message
	if len(errs) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return &Error{Src: src, Offset: offsetOf(src, line, col), Line: line, Column: col + 1, Msg: msg}
}

// offsetOf returns the byte offset of line (from 1), column (code points,
// from 0) in src, clamped to its length.
func offsetOf(src string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(src[off:], '\n')
		if i < 0 {
			return len(src)
		}
		off += i + 1
	}
	for ; col > 0 && off < len(src); col-- {
		if src[off] == '\n' {
			break
		}
		_, n := utf8.DecodeRuneInString(src[off:])
		off += n
	}
	return off
}
