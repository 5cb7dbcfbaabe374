package metrics

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// Status is /status's JSON.
type Status struct {
	Replica       Replica    `json:"replica"`
	Ready         bool       `json:"ready"`
	NotReady      string     `json:"notReady,omitempty"` // why not
	SlotsBusy     int        `json:"slotsBusy"`
	SlotsCapacity int        `json:"slotsCapacity"`
	Runs          []Run      `json:"runs"`
	Finished      []Finished `json:"finished"` // the last runs this replica finished, newest first
	// Isolation is how this replica confines its commands.
	Isolation *Isolation `json:"isolation,omitempty"`
}

// Replica is who answers /status: behind a Service any pod may, so the page names itself.
type Replica struct {
	Name    string `json:"name"` // the pod's name (POD_NAME, which the chart sets), else the host name
	Version string `json:"version"`
	Topic   string `json:"topic,omitempty"`
	// Partitions are the topic's partitions the consumer group gave this replica now.
	Partitions []int32 `json:"partitions"`
	// Leases are the run ids this replica holds under its lease though their partitions
	// went to another replica (Run.Lease LeaseHeld; README "Delivery").
	Leases []string `json:"leases"`
}

// Run outcomes of Finished.
const (
	OutcomeSuccess   = "success"
	OutcomeFailure   = "failure"
	OutcomeNotClosed = "not closed" // Port never took its termination here: see the agent's log
)

// Finished is a run this replica finished, as /status keeps the last ones.
type Finished struct {
	RunID   string    `json:"runId"`
	Action  string    `json:"action"`
	Outcome string    `json:"outcome"`
	Label   string    `json:"label,omitempty"` // what Port shows: exit code 3, timed out after 10m...
	Ended   time.Time `json:"ended"`
	PortURL string    `json:"portURL,omitempty"` // the run's page in Port's app
}

// replicaName is the pod's name: POD_NAME (the chart's downward API), else the host name,
// which Kubernetes sets to the pod's name.
func replicaName() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

func (m *Metrics) status(ready func() error) Status {
	m.mu.Lock()
	st := Status{Replica: Replica{Name: m.replicaName, Version: m.version, Partitions: []int32{}, Leases: []string{}},
		Runs: []Run{}, Finished: []Finished{}}
	m.mu.Unlock()
	if err := ready(); err != nil {
		st.NotReady = err.Error()
	} else {
		st.Ready = true
	}
	if s := m.currentSource(); s != nil {
		snap := s.Snapshot()
		st.SlotsBusy, st.SlotsCapacity = snap.SlotsBusy, snap.SlotsCapacity
		st.Runs = append(st.Runs, snap.Runs...)
		for _, r := range snap.Runs {
			if r.Lease == LeaseHeld {
				st.Replica.Leases = append(st.Replica.Leases, r.RunID)
			}
		}
		st.Finished = append(st.Finished, snap.Finished...)
		st.Replica.Topic = snap.Topic
		st.Replica.Partitions = append(st.Replica.Partitions, snap.Partitions...)
		st.Isolation = snap.Isolation
	}
	slices.Sort(st.Replica.Partitions)
	slices.Sort(st.Replica.Leases)
	sort.Slice(st.Runs, func(i, j int) bool { return st.Runs[i].Received.Before(st.Runs[j].Received) })
	sort.SliceStable(st.Finished, func(i, j int) bool { return st.Finished[i].Ended.After(st.Finished[j].Ended) })
	return st
}

// serveStatus answers JSON, or HTML for a browser (Accept: text/html, or ?format=html).
func (m *Metrics) serveStatus(w http.ResponseWriter, r *http.Request, ready func() error) {
	st := m.status(ready)
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("format") == "html" ||
		(r.URL.Query().Get("format") == "" && strings.Contains(r.Header.Get("Accept"), "text/html")) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// html/template escapes every value: run ids and log lines come from untrusted input.
		_ = statusPage.Execute(w, struct {
			Status
			Now time.Time
		}{st, time.Now()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
