package portapi

import "slices"

type waiter struct {
	key  string
	prio Priority
	wake chan struct{} // capacity 1: the head may have changed, or a request ended
}

// queue is one priority's waiters: FIFO per key (a run), keys served in turn.
type queue struct {
	keys  []string
	byKey map[string][]*waiter
}

func (q *queue) push(w *waiter) {
	if len(q.byKey[w.key]) == 0 {
		q.keys = append(q.keys, w.key)
	}
	q.byKey[w.key] = append(q.byKey[w.key], w)
}

func (q *queue) head() *waiter {
	if len(q.keys) == 0 {
		return nil
	}
	return q.byKey[q.keys[0]][0]
}

// popHead removes the head; its key goes to the back of the turn if it has more waiting.
func (q *queue) popHead() {
	k := q.keys[0]
	q.keys = slices.Delete(q.keys, 0, 1)
	if ws := q.byKey[k][1:]; len(ws) > 0 {
		q.byKey[k] = ws
		q.keys = append(q.keys, k)
	} else {
		delete(q.byKey, k)
	}
}

func (q *queue) remove(w *waiter) {
	ws := q.byKey[w.key]
	i := slices.Index(ws, w)
	if i < 0 {
		return
	}
	ws = slices.Delete(ws, i, i+1)
	if len(ws) > 0 {
		q.byKey[w.key] = ws
		return
	}
	delete(q.byKey, w.key)
	if k := slices.Index(q.keys, w.key); k >= 0 {
		q.keys = slices.Delete(q.keys, k, k+1)
	}
}
