package portcost

// unit is one loop body: fn runs it n times on the 32 KiB at p.
type unit struct {
	name string
	fn   func(n int, p *float32)
	macs int // dense-equivalent multiply-adds of one pass (16 per FMA lane set)
	doc  string
}
