package convert

// LayerReport is what conversion achieved on one linear layer.
type LayerReport struct {
	Name       string  `json:"name"`
	Kind       string  `json:"kind"`
	Rows       int     `json:"rows"`
	Cols       int     `json:"cols"`
	ProxyLoss  float64 `json:"proxy_loss"`
	NoWagPLoss float64 `json:"nowag_p_loss"`
	// FullHLoss: relative output error under the full XXᵀ (FullHLoss), for
	// the methods that collect it (sparsegpt, armor-fast-h).
	FullHLoss float64 `json:"full_h_loss,omitempty"`
	Iters     int     `json:"iters,omitempty"` // ARMOR iterations or armor-fast sweeps run
	Seconds   float64 `json:"seconds"`
	// MulAdds: multiply-adds of the optimization (ARMOR methods), by the
	// algorithm's count (a product skipping S's zeros counts half); GFLOPS
	// is 2·MulAdds per second of Seconds.
	MulAdds int64   `json:"mul_adds,omitempty"`
	GFLOPS  float64 `json:"gflops,omitempty"`
	// ProductGFLOPS: the rate of the f32 product kernels alone while they
	// run (per thread, times the threads), the part of a sweep that is
	// GEMM; it compares with armor-bench kernels' dense f32 GEMM on as
	// many threads. The rest of a sweep is scalar (the exact 2:4 group
	// updates), the b×b solves and elementwise passes.
	ProductGFLOPS float64 `json:"product_gflops,omitempty"`
	Params        int64   `json:"params"`         // stored values (kept core values + wrappers)
	WrapParams    int64   `json:"wrapper_params"` // values of the block-diagonal wrappers
	Bytes         int64   `json:"bytes"`
	Resumed       bool    `json:"resumed,omitempty"`
	// ResumedSweeps: the sweeps of an interrupted run this layer continued
	// from (its sweep checkpoint).
	ResumedSweeps int `json:"resumed_sweeps,omitempty"`
}

// Report summarizes a conversion (armor-convert --json).
type Report struct {
	Output         string        `json:"output"`
	Source         string        `json:"source"`
	Method         string        `json:"method"`
	Block          int           `json:"block,omitempty"`
	Iters          int           `json:"iters,omitempty"`
	DType          string        `json:"dtype"`
	Seed           uint64        `json:"seed"`
	Sequential     bool          `json:"sequential,omitempty"`
	SeqShards      int           `json:"sequential_shards,omitempty"` // block-range shards of a sequential run (0: one process)
	CalibTokens    int           `json:"calib_tokens"`
	CalibSequences int           `json:"calib_sequences"`
	Layers         []LayerReport `json:"layers"`
	// DenseParams: parameters of the linear layers before pruning.
	DenseParams   int64 `json:"dense_params"`
	StoredParams  int64 `json:"stored_params"`
	WrapperParams int64 `json:"wrapper_params"`
	// WrapperOverhead = WrapperParams / DenseParams (0.10: 10 % more
	// multiply-adds than a dense layer of the same shape, on top of the 50 %
	// of the 2:4 core).
	WrapperOverhead float64 `json:"wrapper_overhead"`
	LinearBytes     int64   `json:"linear_bytes"` // stored bytes of the converted linear layers
	WeightBytes     int64   `json:"weight_bytes"` // stored bytes of every tensor
	// MeanProxyLoss and MeanRelNoWagP: mean per-layer proxy loss, and mean of
	// proxy loss / NoWag-P's proxy loss (1 for NoWag-P itself).
	MeanProxyLoss float64 `json:"mean_proxy_loss"`
	MeanRelNoWagP float64 `json:"mean_rel_nowag_p"`
	CalibSeconds  float64 `json:"calib_seconds"`
	Seconds       float64 `json:"seconds"`
	Resumed       int     `json:"resumed_layers,omitempty"`
	// Notes: choices made for the caller (a block size that fits, why
	// checkpoints were not reused), also sent as Progress notes.
	Notes []string `json:"notes,omitempty"`
}
