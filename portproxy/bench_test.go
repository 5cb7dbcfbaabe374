package portproxy_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/port-runner/port-runner/emulator"
	"github.com/port-runner/port-runner/portapi"
	"github.com/port-runner/port-runner/portproxy"
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

// BenchmarkQueuedBigPosts (issue 8 point 5): one run sends 400 log POSTs of ~1 MiB at once
// while the replica's budget (requestsPerSecond: 2) lets few through; each gives up after
// the proxy's 3s request timeout. It reports the peak heap in use while they queue: the
// proxy must not hold every queued body.
func BenchmarkQueuedBigPosts(b *testing.B) {
	const posts, size = 400, portproxy.MaxBody - 64
	emu := emulator.New(emulator.Options{ClientID: "cid", ClientSecret: "secret", OrgID: "org"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, err := emu.Start(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	api, err := portapi.New(portapi.Options{BaseURL: base, ClientID: "cid", ClientSecret: "secret", RequestsPerSecond: 2})
	if err != nil {
		b.Fatal(err)
	}
	proxy := portproxy.New(func(ctx context.Context, rq portproxy.Request) (portproxy.Response, error) {
		resp, err := api.Forward(ctx, portapi.ProxyRequest{Method: rq.Method, Path: rq.Path, Query: rq.Query, ContentType: rq.ContentType, Body: rq.Body, RunID: rq.RunID})
		return portproxy.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body}, err
	}, portproxy.Options{Logger: zap.NewNop(), RequestTimeout: 3 * time.Second})
	url, _, err := proxy.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
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
