package emulator

import (
	"context"
	"sync"

	"github.com/port-runner/port-runner/internal/httpserve"
)

// Server serves an Emulator on one address that can go away and come back: Refuse makes
// new connections fail with "connection refused" (an outage as an agent sees a Port it
// cannot reach, unlike SetDown's 503s), Accept serves on the same address again.
type Server struct {
	e    *Emulator
	ctx  context.Context
	addr string

	mu   sync.Mutex
	stop context.CancelFunc // ends the current serving; nil while refusing
	wait func() error
	err  error // the first error a serving ended with
}

// Serve listens on addr (port 0 picks one) until ctx ends. Wait reports how it ended.
func (e *Emulator) Serve(ctx context.Context, addr string) (*Server, error) {
	s := &Server{e: e, ctx: ctx}
	bound, err := s.listen(addr)
	if err != nil {
		return nil, err
	}
	s.addr = bound
	return s, nil
}

func (s *Server) listen(addr string) (string, error) {
	sctx, cancel := context.WithCancel(s.ctx)
	bound, wait, err := httpserve.Serve(sctx, addr, s.e)
	if err != nil {
		cancel()
		return "", err
	}
	s.stop, s.wait = cancel, wait
	return bound, nil
}

// URL is the base URL, the same before and after an outage.
func (s *Server) URL() string { return "http://" + s.addr }

// Refuse closes the listener and every connection, so requests fail until Accept. It
// returns once nothing is served any more.
func (s *Server) Refuse() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked()
}

// Accept serves on the same address again after Refuse (a no-op while serving).
func (s *Server) Accept() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return nil
	}
	if s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	_, err := s.listen(s.addr)
	return err
}

// Wait stops serving once ctx has ended and reports the first error serving failed with.
func (s *Server) Wait() error {
	<-s.ctx.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked()
	return s.err
}

func (s *Server) endLocked() {
	if s.stop == nil {
		return
	}
	s.stop()
	if err := s.wait(); err != nil && s.err == nil {
		s.err = err
	}
	s.stop, s.wait = nil, nil
}
