package reporter

import (
	"sync"

	"go.uber.org/zap"
)

// runLogger is a run's logger, derived on first use: most runs log nothing, and deriving one
// (zap's With) clones the core and encodes the run's fields, for every run.
type runLogger struct {
	once   sync.Once
	base   *zap.Logger
	runID  string
	fields []zap.Field // besides run_id, which comes first
	l      *zap.Logger
}

func (r *runLogger) get() *zap.Logger {
	r.once.Do(func() {
		r.l = r.base.With(append([]zap.Field{zap.String("run_id", r.runID)}, r.fields...)...)
	})
	return r.l
}
