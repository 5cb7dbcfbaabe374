package agent

import "sync"

// seenRuns remembers the run ids this replica is running or recently finished, so a
// message delivered twice (Port re-sends, a redelivery after a rebalance back to this
// member) does not run a command twice. It costs no Port request; runs handled by another
// replica are the consumer's progress metadata's business.
type seenRuns struct {
	mu     sync.Mutex
	runs   map[string]*seenRun
	recent []string // finished ids, oldest first, bounded
	max    int
}

type seenRun struct {
	done     chan struct{} // closed when the claim ends
	finished bool
}

func newSeenRuns(max int) *seenRuns { return &seenRuns{runs: map[string]*seenRun{}, max: max} }

// claim takes a run id for this handler. When another handler holds it, running is closed
// once that one ends (then claim again: the outcome decides); when it finished here
// before, claimed is false and running nil.
func (s *seenRuns) claim(id string) (claimed bool, running <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runs[id]; ok {
		if r.finished {
			return false, nil
		}
		return false, r.done
	}
	s.runs[id] = &seenRun{done: make(chan struct{})}
	return true, nil
}

// end gives a claim back: a finished run's id is kept among the recent ones; an unfinished
// one is forgotten, so its redelivery runs it.
func (s *seenRuns) end(id string, finished bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok || r.finished {
		return
	}
	close(r.done)
	if !finished {
		delete(s.runs, id)
		return
	}
	r.finished = true
	s.recent = append(s.recent, id)
	if len(s.recent) > s.max {
		delete(s.runs, s.recent[0])
		s.recent[0] = ""
		s.recent = s.recent[1:]
	}
}

// holds reports whether this replica handles the run now or finished it recently.
func (s *seenRuns) holds(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.runs[id]
	return ok
}
