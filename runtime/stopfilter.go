package runtime

// StopFilter holds back generated text that might be the start of a stop
// string, for callers that drive generation themselves (a server's
// scheduler); Session.Generate uses the same filter.
type StopFilter struct{ f *stopFilter }

// NewStopFilter makes a filter for stops (empty strings are ignored).
func NewStopFilter(stops []string) *StopFilter { return &StopFilter{newStopFilter(stops)} }

// Add appends text and returns what can be released; hit reports that a
// stop string was found: the text before it is released, the rest dropped.
func (f *StopFilter) Add(text string) (release string, hit bool) { return f.f.add(text) }

// Flush releases the text held back (at the end of generation).
func (f *StopFilter) Flush() string { return f.f.flush() }
