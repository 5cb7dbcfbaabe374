package reporter

import (
	"context"
	"net/http"
	"testing"
)

// A 408 from Port on the closing request is retried: the run ends closed, once, with its
// last lines (left open for redelivery, it would stall its partition: README "Delivery").
func TestClosingAfter408EndsClosed(t *testing.T) {
	v := newEnv(t, nil)
	id := v.run("r_408")
	rl := New(v.api, Options{}).Start(context.Background(), id, nil)
	write(t, rl, "last words\n")
	v.e.FailNext(1, http.StatusRequestTimeout)
	closeRun(t, rl, Outcome{Success: true, Summary: "port-runner: exit code 0"})
	s := checkClosedOnce(t, v, id, "SUCCESS", "")
	equalLines(t, logLines(s), []string{"last words", "port-runner: exit code 0"})
	var answered408 int
	for _, r := range v.logPosts(id) {
		if r.Status == http.StatusRequestTimeout {
			answered408++
		}
	}
	if answered408 != 1 {
		t.Fatalf("%d closing requests answered 408, want the one injected", answered408)
	}
}
