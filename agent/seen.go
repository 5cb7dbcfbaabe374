package agent

import "sync"

// seenRuns remembers the run ids this replica is running or recently finished, so a
// message delivered twice (Port re-sends, a redelivery after a rebalance back to this
// member) does not run a command twice. It costs no Port request; runs handled by another
// replica are the consumer's redelivery check's business.
type seenRuns struct {
	mu     sync.Mutex
	ids    map[string]bool // true: finished
	recent []string        // finished ids, oldest first, bounded
	max    int
}

func newSeenRuns(max int) *seenRuns { return &seenRuns{ids: map[string]bool{}, max: max} }

// begin claims a run id; false means it is running or finished here already.
func (s *seenRuns) begin(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false
	}
	s.ids[id] = false
	return true
}

// finish keeps a closed run's id among the recent ones.
func (s *seenRuns) finish(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id] = true
	s.recent = append(s.recent, id)
	if len(s.recent) > s.max {
		delete(s.ids, s.recent[0])
		s.recent[0] = ""
		s.recent = s.recent[1:]
	}
}

// forget releases a run that was not finished, so its redelivery runs it.
func (s *seenRuns) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if done, ok := s.ids[id]; ok && !done {
		delete(s.ids, id)
	}
}
