package emulator

import "time"

// BudgetChanged is when SetBudget's last change took effect: the start of the first window
// it applied to (a change waits for the window in progress to end); zero before any. A test
// counts the traffic under the new budget from it.
func (e *Emulator) BudgetChanged() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.budgetSince
}
