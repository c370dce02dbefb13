// Package cliflag holds flag types shared by the commands.
package cliflag

import "strings"

// Strings is a repeatable string flag: every use appends one value
// (--calib a.txt --calib b.txt). Register it with flag.FlagSet.Var.
type Strings []string

func (s *Strings) String() string {
	if s == nil {
		return ""
	}
	return strings.Join(*s, ",")
}

// Set appends v.
func (s *Strings) Set(v string) error {
	*s = append(*s, v)
	return nil
}
