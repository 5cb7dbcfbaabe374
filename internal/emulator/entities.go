package emulator

import (
	"maps"
	"net/http"
	"sort"
	"time"
)

// EntityState is one entity as the emulator stores it: enough of Port's
// entity routes for a command that upserts entities during its run (seed:
// "Tying Entities to an action run").
type EntityState struct {
	Identifier, Blueprint, Title string
	Properties                   map[string]any
	Relations                    map[string]any
	// RunID is the run_id of the last request that created or changed the
	// entity ("" when none was given); RunIDs lists every one, in order.
	RunID                string
	RunIDs               []string
	CreatedAt, UpdatedAt time.Time
}

func entityKey(blueprint, id string) string { return blueprint + "\x00" + id }

// Entity returns a snapshot of the entity, if it exists.
func (e *Emulator) Entity(blueprint, id string) (EntityState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.entities[entityKey(blueprint, id)]
	if !ok {
		return EntityState{}, false
	}
	return en.clone(), true
}

func (en *EntityState) clone() EntityState {
	c := *en
	c.Properties = maps.Clone(en.Properties)
	c.Relations = maps.Clone(en.Relations)
	c.RunIDs = append([]string(nil), en.RunIDs...)
	return c
}

type wireEntity struct {
	Identifier string         `json:"identifier"`
	Title      string         `json:"title"`
	Blueprint  string         `json:"blueprint"`
	Properties map[string]any `json:"properties"`
	Relations  map[string]any `json:"relations"`
	CreatedAt  string         `json:"createdAt"`
	UpdatedAt  string         `json:"updatedAt"`
}

func (en *EntityState) wire() wireEntity {
	w := wireEntity{
		Identifier: en.Identifier, Title: en.Title, Blueprint: en.Blueprint,
		Properties: en.Properties, Relations: en.Relations,
		CreatedAt: fmtTime(en.CreatedAt), UpdatedAt: fmtTime(en.UpdatedAt),
	}
	if w.Properties == nil {
		w.Properties = map[string]any{}
	}
	if w.Relations == nil {
		w.Relations = map[string]any{}
	}
	return w
}

// checkRunIDLocked applies Port's rule for run_id on entity changes: the run must exist and
// be IN_PROGRESS.
func (e *Emulator) checkRunIDLocked(runID string) error {
	if runID == "" {
		return nil
	}
	run, ok := e.runs[runID]
	if !ok {
		return errf(http.StatusNotFound, "not_found", "run %q not found", runID)
	}
	if run.Status != statusInProgress {
		return errf(http.StatusUnprocessableEntity, "invalid_request",
			"entities can be tied to run %s only while it is IN_PROGRESS (it is %s)", runID, run.Status)
	}
	return nil
}

// handleUpsertEntity is POST /v1/blueprints/{blueprint}/entities[?upsert=true][&run_id=...]:
// 201 for a new entity; with upsert=true an existing one is replaced (200), without it 409.
func (e *Emulator) handleUpsertEntity(r *http.Request, body []byte, now time.Time) (int, any, error) {
	var in struct {
		Identifier string         `json:"identifier"`
		Title      string         `json:"title"`
		Icon       string         `json:"icon"`
		Team       any            `json:"team"`
		Properties map[string]any `json:"properties"`
		Relations  map[string]any `json:"relations"`
	}
	if err := decode(body, &in, true); err != nil {
		return 0, nil, err
	}
	if in.Identifier == "" {
		return 0, nil, errf(http.StatusUnprocessableEntity, "invalid_request", "body must have required property 'identifier'")
	}
	bp := r.PathValue("blueprint")
	q := r.URL.Query()
	runID := q.Get("run_id")
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkRunIDLocked(runID); err != nil {
		return 0, nil, err
	}
	key := entityKey(bp, in.Identifier)
	en, exists := e.entities[key]
	status := http.StatusCreated
	switch {
	case exists && q.Get("upsert") != "true":
		return 0, nil, errf(http.StatusConflict, "identifier_taken",
			"entity %q of blueprint %q already exists (use upsert=true to replace it)", in.Identifier, bp)
	case exists:
		status = http.StatusOK
	default:
		en = &EntityState{Identifier: in.Identifier, Blueprint: bp, CreatedAt: now}
		e.entities[key] = en
	}
	en.Title = in.Title
	en.Properties = maps.Clone(in.Properties)
	en.Relations = maps.Clone(in.Relations)
	en.UpdatedAt = now
	if runID != "" {
		en.RunID = runID
		en.RunIDs = append(en.RunIDs, runID)
	}
	return status, map[string]any{"ok": true, "entity": en.wire()}, nil
}

// handleGetEntity is GET /v1/blueprints/{blueprint}/entities/{id}.
func (e *Emulator) handleGetEntity(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	bp, id := r.PathValue("blueprint"), r.PathValue("id")
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.entities[entityKey(bp, id)]
	if !ok {
		return 0, nil, errf(http.StatusNotFound, "not_found", "entity %q of blueprint %q not found", id, bp)
	}
	return http.StatusOK, map[string]any{"ok": true, "entity": en.wire()}, nil
}

// handleListEntities is GET /v1/blueprints/{blueprint}/entities.
func (e *Emulator) handleListEntities(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	bp := r.PathValue("blueprint")
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []wireEntity{}
	for _, en := range e.entities {
		if en.Blueprint == bp {
			out = append(out, en.wire())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identifier < out[j].Identifier })
	return http.StatusOK, map[string]any{"ok": true, "entities": out}, nil
}

// handleDeleteEntity is DELETE /v1/blueprints/{blueprint}/entities/{id}[?run_id=...].
func (e *Emulator) handleDeleteEntity(r *http.Request, _ []byte, _ time.Time) (int, any, error) {
	bp, id := r.PathValue("blueprint"), r.PathValue("id")
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkRunIDLocked(r.URL.Query().Get("run_id")); err != nil {
		return 0, nil, err
	}
	key := entityKey(bp, id)
	if _, ok := e.entities[key]; !ok {
		return 0, nil, errf(http.StatusNotFound, "not_found", "entity %q of blueprint %q not found", id, bp)
	}
	delete(e.entities, key)
	return http.StatusOK, map[string]any{"ok": true}, nil
}
