// Package httpserve runs an HTTP server on loopback or a configured address until a context
// ends: the one way the agent's metrics, its Port API proxy and the emulator serve.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownGrace is how long open requests get once ctx ends; then connections are cut.
const shutdownGrace = 5 * time.Second

// headerTimeout bounds a request's headers; idleTimeout a connection's wait for its next
// request.
const headerTimeout, idleTimeout = 10 * time.Second, 30 * time.Second

// maxHeaderBytes bounds a request's headers (a Port API request's are a token and a few
// words).
const maxHeaderBytes = 64 << 10

// Serve listens on addr (port 0 picks one) and serves h until ctx ends. It returns the bound
// address and wait, which returns once the server and its shutdown have finished (it may be
// called more than once) with the server's error, if it failed on its own.
// configure, if given, adjusts the server before it starts (the proxy adds a per-connection
// context).
func Serve(ctx context.Context, addr string, h http.Handler, configure ...func(*http.Server)) (bound string, wait func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	// A connection idle after a response is closed as one slow to send its headers is: else
	// one request each would keep connections, and the bound's slots, forever (limit.go).
	// Headers are held while they arrive: at net/http's 1 MiB, the bound's connections
	// could hold a GiB.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: headerTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
	for _, c := range configure {
		c(srv)
	}
	served := make(chan error, 1)
	serveDone := make(chan struct{})
	go func() {
		served <- srv.Serve(newLimitListener(ln, maxConns()))
		close(serveDone)
	}()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-serveDone:
			return // Serve failed on its own: nothing left to shut down
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close() // requests still busy after the grace: cut them
		}
	}()
	wait = sync.OnceValue(func() error {
		<-stopped
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return ln.Addr().String(), wait, nil
}
