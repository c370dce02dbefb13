package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Away from a terminal, lines are printed whole, at most every Every and
// not before Every has passed.
func TestLineNotTerminal(t *testing.T) {
	var b bytes.Buffer
	l := NewLine(&b)
	l.Every = 50 * time.Millisecond
	l.Show("too early")
	time.Sleep(60 * time.Millisecond)
	l.Show("one")
	l.Show("two")
	l.Clear()
	l.Show("three")
	time.Sleep(60 * time.Millisecond)
	l.Show("four")
	if got := b.String(); got != "one\nfour\n" {
		t.Fatalf("got %q", got)
	}
	if strings.Contains(b.String(), "\r") {
		t.Fatal("carriage return away from a terminal")
	}
}
