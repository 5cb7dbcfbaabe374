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
	fields []zap.Field
	l      *zap.Logger
}

func (r *runLogger) get() *zap.Logger {
	r.once.Do(func() { r.l = r.base.With(r.fields...) })
	return r.l
}
