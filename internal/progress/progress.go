// Package progress shows the state of long work on a terminal line.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Line is one status line on w. On a terminal each Show replaces the last
// one in place, at most 5 times a second; elsewhere (a log file, a pipe) a
// line is printed at most every Every, the first one Every after the work
// began, so logs of short work stay clean. The zero Every means 10 seconds.
type Line struct {
	w     io.Writer
	tty   bool
	Every time.Duration

	mu    sync.Mutex
	last  time.Time
	width int
}

// NewLine returns a Line writing to w.
func NewLine(w io.Writer) *Line {
	return &Line{w: w, tty: IsTerminal(w), last: time.Now()}
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Show displays s, unless a line was shown too recently.
func (l *Line) Show(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	every := l.Every
	if every == 0 {
		every = 10 * time.Second
	}
	if l.tty {
		every = 200 * time.Millisecond
	}
	if now.Sub(l.last) < every {
		return
	}
	l.last = now
	if !l.tty {
		fmt.Fprintln(l.w, s)
		return
	}
	n := len([]rune(s))
	fmt.Fprintf(l.w, "\r%s%s", s, strings.Repeat(" ", max(0, l.width-n)))
	if l.width > n {
		fmt.Fprintf(l.w, "\r%s", s)
	}
	l.width = n
}

// Clear removes the line from a terminal, so the next output starts clean.
func (l *Line) Clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty && l.width > 0 {
		fmt.Fprintf(l.w, "\r%s\r", strings.Repeat(" ", l.width))
	}
	l.width = 0
	l.last = time.Now()
	if l.tty {
		l.last = time.Time{}
	}
}
