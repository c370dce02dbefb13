package convert

import "time"

// etaTracker estimates the time left, in units of work (a layer costs about
// rows·cols).
type etaTracker struct {
	start      time.Time
	calibStart time.Time
	layerStart time.Time // when the first layer started (the rate excludes calibration)
	layerWork  map[string]float64
	totalWork  float64 // work of the layers not resumed
	doneWork   float64
	finished   int // layers finished, resumed ones included
	// Sweeps of the finished ARMOR layers, and the cap a layer may reach.
	sweepsDone, layersDone int
	capSweeps              float64
}

// expectedSweeps is the most sweeps (iterations) a layer of opt.Method
// may take.
func expectedSweeps(opt ConvertOptions) float64 {
	switch {
	case opt.Iters > 0:
		return float64(opt.Iters)
	case opt.Method == "armor":
		return 20000
	}
	return 200
}

func (e *etaTracker) startLayers() {
	if e.layerStart.IsZero() {
		e.layerStart = time.Now()
	}
}

func (e *etaTracker) layerDone(name string, iters int) {
	e.finished++
	if iters > 0 {
		e.sweepsDone += iters
		e.layersDone++
	}
	e.doneWork += e.layerWork[name]
}

// remaining extrapolates from the finished layers (0 before the first).
func (e *etaTracker) remaining() time.Duration {
	if e.doneWork == 0 {
		return 0
	}
	el := time.Since(e.layerStart).Seconds()
	return time.Duration(el / e.doneWork * (e.totalWork - e.doneWork) * float64(time.Second))
}

// duringLayer is the ETA while layer name runs its sweep it. Before the
// first layer finishes (hours in, on a big model), it comes from this
// layer's sweeps: seconds per sweep and unit of work, times the sweeps a
// layer is expected to take (the mean of the finished layers, else the
// cap, so it is an upper bound) over the work left.
func (e *etaTracker) duringLayer(name string, started time.Time, it int) time.Duration {
	if e.doneWork > 0 && e.layersDone > 0 || it <= 0 {
		return e.remaining()
	}
	expect := e.capSweeps
	if e.layersDone > 0 {
		expect = float64(e.sweepsDone) / float64(e.layersDone)
	}
	perSweep := time.Since(started).Seconds() / float64(it) / e.layerWork[name]
	left := perSweep * (expect*(e.totalWork-e.doneWork) - float64(it)*e.layerWork[name])
	return time.Duration(max(left, 0) * float64(time.Second))
}

// calibration is the ETA of a calibration pass at sequence d of t.
func (e *etaTracker) calibration(d, t int) time.Duration {
	if d <= 0 || d >= t {
		return 0
	}
	el := time.Since(e.calibStart).Seconds()
	return time.Duration(el / float64(d) * float64(t-d) * float64(time.Second))
}
