package agent

import "testing"

func TestSeenRunsSecondCopyWaitsForTheFirst(t *testing.T) {
	s := newSeenRuns(2)
	if ok, _ := s.claim("r1"); !ok {
		t.Fatal("first claim refused")
	}
	ok, running := s.claim("r1")
	if ok || running == nil {
		t.Fatal("a second copy while the first runs must wait")
	}
	select {
	case <-running:
		t.Fatal("wait ended before the first copy did")
	default:
	}
	s.end("r1", false) // left for redelivery: the waiting copy takes it
	<-running
	if ok, _ := s.claim("r1"); !ok {
		t.Fatal("an unfinished run's second copy could not take it over")
	}
	s.end("r1", true)
	if ok, running := s.claim("r1"); ok || running != nil {
		t.Fatal("a finished run must be a duplicate")
	}
	// Bounded: old finished ids are forgotten.
	for _, id := range []string{"r2", "r3"} {
		s.claim(id)
		s.end(id, true)
	}
	if ok, _ := s.claim("r1"); !ok {
		t.Fatal("the oldest finished id was not forgotten past the bound")
	}
}
