package portproxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/internal/emulator"
	"github.com/port-runner/port-runner/internal/portapi"
	"github.com/port-runner/port-runner/internal/portproxy"
)

// lazyBody yields n bytes of a JSON log message without holding them, so the client side
// of the benchmark adds nothing to the heap it measures.
type lazyBody struct{ off, n int }

func (b *lazyBody) Read(p []byte) (int, error) {
	const head, tail = `{"message":"`, `"}`
	if b.off >= b.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && b.off < b.n {
		switch {
		case b.off < len(head):
			p[k] = head[b.off]
		case b.off >= b.n-len(tail):
			p[k] = tail[b.off-(b.n-len(tail))]
		default:
			p[k] = 'x'
		}
		k++
		b.off++
	}
	return k, nil
}

// BenchmarkQueuedBigPosts (BENCHMARKS.md): one run sends 400 log POSTs of ~1 MiB at once
// while the replica's budget (requestsPerSecond: 2) lets few through; each gives up after
// the proxy's 3s request timeout. It reports the peak heap in use while they queue: the
// proxy must not hold every queued body.
func BenchmarkQueuedBigPosts(b *testing.B) {
	const posts, size = 400, portproxy.MaxBody - 64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emu, _, proxy, url := benchProxy(ctx, b, 2, portproxy.Options{RequestTimeout: 3 * time.Second})
	emu.RegisterRun("r_1", "act")
	token, revoke := proxy.Register("r_1", "act", "", nil)
	defer revoke()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: posts}}

	var peak uint64
	for b.Loop() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.HeapInuse
		done := make(chan struct{})
		var sampler sync.WaitGroup
		sampler.Go(func() {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > before {
					peak = max(peak, ms.HeapInuse-before)
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		})
		var wg sync.WaitGroup
		codes := make(chan int, posts)
		for range posts {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", url+"/actions/runs/r_1/logs", &lazyBody{n: size})
				req.ContentLength = size
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					codes <- -1
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes <- resp.StatusCode
			})
		}
		wg.Wait()
		close(done)
		sampler.Wait()
		close(codes)
		byCode := map[int]int{}
		for c := range codes {
			byCode[c]++
		}
		b.Logf("answers by status: %v", byCode)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// BenchmarkFloodDelaysOthers (BENCHMARKS.md): run A floods the proxy with 200 concurrent
// GET loops at requestsPerSecond: 10; it reports how long another run's log batch (log
// priority) and closing request (closing priority) then take through the same Port client.
// "unbounded" is the proxy without limits of its own, as before; "limits" the agent's.
func BenchmarkFloodDelaysOthers(b *testing.B) {
	const rps = 10
	for _, tc := range []struct {
		name   string
		limits portproxy.Limits
	}{
		{"unbounded", portproxy.Limits{MaxConcurrentPerRun: 1000, MaxQueuedPerRun: 1000, MaxConcurrent: 1000}},
		{"limits", portproxy.Limits{RequestsPerSecond: rps / 2, RunRequestsPerSecond: rps / 4}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			emu, api, proxy, url := benchProxy(ctx, b, rps, portproxy.Options{Limits: tc.limits})
			emu.RegisterRun("r_a", "act")
			token, revoke := proxy.Register("r_a", "act", "", nil)
			defer revoke()
			var logMS, closeMS float64
			for i := 0; b.Loop(); i++ {
				runB := fmt.Sprintf("r_b%d", i)
				emu.RegisterRun(runB, "act")
				floodCtx, stopFlood := context.WithCancel(ctx)
				var flood sync.WaitGroup
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
				for range 200 {
					flood.Go(func() {
						for floodCtx.Err() == nil {
							req, _ := http.NewRequestWithContext(floodCtx, "GET", url+"/actions/runs/r_a", nil)
							req.Header.Set("Authorization", "Bearer "+token)
							if resp, err := client.Do(req); err == nil {
								_, _ = io.Copy(io.Discard, resp.Body)
								resp.Body.Close()
							}
						}
					})
				}
				// The flood has spent the burst once Port has seen it.
				for n := 0; n < rps; {
					n = 0
					for _, r := range emu.Requests() {
						if r.Path == "/v1/actions/runs/r_a" {
							n++
						}
					}
					time.Sleep(10 * time.Millisecond)
				}
				start := time.Now()
				if err := api.AppendLog(ctx, runB, "a log batch"); err != nil {
					b.Fatal(err)
				}
				logMS = float64(time.Since(start).Milliseconds())
				start = time.Now()
				if _, err := api.CloseRun(ctx, runB, portapi.Closing{Message: "done", TerminationStatus: portapi.StatusSuccess}); err != nil {
					b.Fatal(err)
				}
				closeMS = float64(time.Since(start).Milliseconds())
				stopFlood()
				flood.Wait()
			}
			b.ReportMetric(logMS, "log-ms")
			b.ReportMetric(closeMS, "close-ms")
		})
	}
}

// benchProxy serves the emulator, a Port client of it at rps and a proxy through that client
// until ctx ends; url is the proxy's PORT_API_URL.
func benchProxy(ctx context.Context, b *testing.B, rps float64, opts portproxy.Options) (*emulator.Emulator, *portapi.Client, *portproxy.Proxy, string) {
	b.Helper()
	emu := emulator.New(emulator.Options{ClientID: "cid", ClientSecret: "secret", OrgID: "org"})
	srv, err := emu.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	base := srv.URL()
	api, err := portapi.New(portapi.Options{BaseURL: base, ClientID: "cid", ClientSecret: "secret", RequestsPerSecond: rps})
	if err != nil {
		b.Fatal(err)
	}
	opts.Logger = zap.NewNop()
	proxy := portproxy.New(forwardVia(api), opts)
	url, _, err := proxy.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return emu, api, proxy, url
}
