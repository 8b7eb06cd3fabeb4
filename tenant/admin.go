package tenant

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/kairoshq/kairos/internal/errs"
)

// View is a tenant as the admin API shows it: the secret key only when
// the tenant is created or its keys rotated (Keys), else a hint.
type View struct {
	ID             string    `json:"id"`
	Name           string    `json:"name,omitempty"`
	Status         Status    `json:"status"`
	Created        time.Time `json:"created"`
	Updated        time.Time `json:"updated"`
	AllowedOrigins []string  `json:"allowed_origins"`
	Quotas         Quotas    `json:"quotas"`
	PublishableKey string    `json:"publishable_key"`
	SecretKeyHint  string    `json:"secret_key_hint"`
	// Keys is the full key pair, on creation and rotation only.
	Keys *Keys `json:"keys,omitempty"`
	// PreviousKeysUntil is when the keys before the last rotation stop
	// working, while they still do.
	PreviousKeysUntil *time.Time `json:"previous_keys_until,omitempty"`
	// Loaded tells whether the tenant's server is loaded on this replica;
	// EventsToday counts the events it accepted today (UTC): with shared
	// counters (kairos serve) on every replica, as last shared (every
	// second), else on this one.
	Loaded      bool  `json:"loaded"`
	EventsToday int64 `json:"events_today"`
}

func (r *Router) view(ctx context.Context, t Tenant, withKeys bool) View {
	v := View{ID: t.ID, Name: t.Name, Status: t.Status, Created: t.Created, Updated: t.Updated,
		AllowedOrigins: t.AllowedOrigins, Quotas: t.Quotas, PublishableKey: t.Keys.Publishable,
		SecretKeyHint: hint(t.Keys.Secret), Loaded: r.pool.IsLoaded(t.ID), EventsToday: r.quotas.eventsOf(ctx, t.ID)}
	if v.AllowedOrigins == nil {
		v.AllowedOrigins = []string{}
	}
	if p := t.Previous; p != nil && r.cfg.Now().Before(p.Until) {
		u := p.Until
		v.PreviousKeysUntil = &u
	}
	if withKeys {
		k := t.Keys
		v.Keys = &k
	}
	return v
}

func hint(key string) string {
	if len(key) < 8 {
		return "…"
	}
	return key[:7] + "…"
}

// Patch changes a tenant's settings (PATCH /v1/tenants/{id}); absent
// members are unchanged.
type Patch struct {
	Name           *string   `json:"name"`
	AllowedOrigins *[]string `json:"allowed_origins"`
	Quotas         *Quotas   `json:"quotas"`
}

// adminAPI serves /v1/tenants… to the admin key.
func (r *Router) adminAPI(w http.ResponseWriter, req *http.Request) {
	key, fromHeader, bad := requestKey(req)
	switch {
	case bad:
		writeError(w, http.StatusUnauthorized, "unauthorized", "malformed Authorization header: want Bearer <key>")
		return
	case key == "":
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing key: the tenant API needs the admin key in the header Authorization: Bearer <key>")
		return
	case !fromHeader:
		writeError(w, http.StatusUnauthorized, "unauthorized", "the admin key is accepted only in the Authorization header")
		return
	case !r.isAdmin(key):
		writeError(w, http.StatusUnauthorized, "unauthorized", "unknown key: the tenant API needs the admin key")
		return
	}
	ctx := req.Context()
	rest := strings.Trim(strings.TrimPrefix(req.URL.Path, "/v1/tenants"), "/")
	parts := strings.Split(rest, "/")
	if rest == "" {
		parts = nil
	}
	var err error
	switch {
	case len(parts) == 0 && req.Method == http.MethodGet:
		err = r.listTenants(ctx, w)
	case len(parts) == 0 && req.Method == http.MethodPost:
		err = r.createTenant(ctx, w, req)
	case len(parts) == 1 && (req.Method == http.MethodGet || req.Method == http.MethodHead):
		err = r.getTenant(ctx, w, parts[0])
	case len(parts) == 1 && req.Method == http.MethodPatch:
		err = r.patchTenant(ctx, w, req, parts[0])
	case len(parts) == 1 && req.Method == http.MethodDelete:
		err = r.deleteTenant(ctx, w, parts[0])
	case len(parts) == 2 && req.Method == http.MethodPost && (parts[1] == "suspend" || parts[1] == "resume"):
		err = r.setStatus(ctx, w, parts[0], parts[1] == "suspend")
	case len(parts) == 2 && req.Method == http.MethodPost && parts[1] == "keys":
		err = r.rotateKeys(ctx, w, req, parts[0])
	case len(parts) <= 2:
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s", req.Method, req.URL.Path)
		return
	default:
		writeError(w, http.StatusNotFound, "not_found", "no route %s", req.URL.Path)
		return
	}
	if err != nil {
		status, code := errorStatus(err)
		msg, ok := errs.Message(err)
		if !ok || status == http.StatusInternalServerError {
			r.log.LogAttrs(ctx, slog.LevelError, "tenant API", slog.String("path", req.URL.Path), slog.Any("err", err))
			msg = "internal error"
			if status == http.StatusServiceUnavailable {
				msg = "the store is unavailable: retry"
			}
		}
		writeError(w, status, code, "%s", msg)
	}
}

func (r *Router) listTenants(ctx context.Context, w http.ResponseWriter) error {
	ts, err := r.cfg.Registry.All(ctx)
	if err != nil {
		return err
	}
	out := make([]View, len(ts))
	for i, t := range ts {
		out[i] = r.view(ctx, t, false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenants": out})
	return nil
}

func (r *Router) createTenant(ctx context.Context, w http.ResponseWriter, req *http.Request) error {
	var s Spec
	if err := decodeBody(req, &s); err != nil {
		return err
	}
	r.mu.Lock()
	t, err := r.cfg.Registry.Create(ctx, s)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.pool.Unblock(t.ID) // a tenant of the same id deleted before
	if err := r.Load(ctx); err != nil {
		return err
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "tenant created", slog.String("tenant", t.ID))
	writeJSON(w, http.StatusCreated, r.view(ctx, t, true))
	return nil
}

func (r *Router) getTenant(ctx context.Context, w http.ResponseWriter, id string) error {
	t, err := r.cfg.Registry.Get(ctx, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, r.view(ctx, t, false))
	return nil
}

func (r *Router) patchTenant(ctx context.Context, w http.ResponseWriter, req *http.Request, id string) error {
	var p Patch
	if err := decodeBody(req, &p); err != nil {
		return err
	}
	if p.Quotas != nil {
		if err := p.Quotas.validate(); err != nil {
			return err
		}
	}
	if p.Name != nil && len(*p.Name) > 200 {
		return errs.New(errs.Invalid, "name: longer than 200 characters")
	}
	if p.AllowedOrigins != nil {
		if err := checkOrigins(*p.AllowedOrigins); err != nil {
			return err
		}
	}
	t, err := r.update(ctx, id, func(t *Tenant) error {
		if p.Name != nil {
			t.Name = *p.Name
		}
		if p.AllowedOrigins != nil {
			t.AllowedOrigins = *p.AllowedOrigins
		}
		if p.Quotas != nil {
			t.Quotas = *p.Quotas
		}
		return nil
	})
	if err != nil {
		return err
	}
	if p.AllowedOrigins != nil {
		// The tenant's server was built with the old origins.
		if err := r.pool.Unload(ctx, id); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, r.view(ctx, t, false))
	return nil
}

// update changes the tenant id in the registry and reloads the snapshot.
func (r *Router) update(ctx context.Context, id string, change func(*Tenant) error) (Tenant, error) {
	r.mu.Lock()
	t, err := r.cfg.Registry.Update(ctx, id, change)
	r.mu.Unlock()
	if err != nil {
		return Tenant{}, err
	}
	return t, r.Load(ctx)
}

func (r *Router) setStatus(ctx context.Context, w http.ResponseWriter, id string, suspend bool) error {
	s := Active
	if suspend {
		s = Suspended
	}
	r.mu.Lock()
	t, err := r.cfg.Registry.SetStatus(ctx, id, s)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if err := r.Load(ctx); err != nil { // unloads a suspended tenant
		return err
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "tenant status changed", slog.String("tenant", id), slog.String("status", string(s)))
	writeJSON(w, http.StatusOK, r.view(ctx, t, false))
	return nil
}

// Rotation is the optional body of POST /v1/tenants/{id}/keys.
type Rotation struct {
	// GraceSeconds is how long the old keys stay valid (absent: the
	// deployment's --tenant-key-grace; 0: they stop at once).
	GraceSeconds *int64 `json:"grace_seconds"`
}

func (r *Router) rotateKeys(ctx context.Context, w http.ResponseWriter, req *http.Request, id string) error {
	var rot Rotation
	if err := decodeBody(req, &rot); err != nil {
		return err
	}
	grace := r.cfg.KeyGrace
	if rot.GraceSeconds != nil {
		if *rot.GraceSeconds < 0 || *rot.GraceSeconds > 90*86400 {
			return errs.New(errs.Invalid, "grace_seconds: want 0..7776000 (90 days)")
		}
		grace = time.Duration(*rot.GraceSeconds) * time.Second
	}
	r.mu.Lock()
	t, err := r.cfg.Registry.Rotate(ctx, id, grace)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if err := r.Load(ctx); err != nil {
		return err
	}
	// The tenant's server checks keys again: rebuild it with the new ones.
	if err := r.pool.Unload(ctx, id); err != nil {
		return err
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "tenant keys rotated", slog.String("tenant", id), slog.Duration("grace", grace))
	writeJSON(w, http.StatusOK, r.view(ctx, t, true))
	return nil
}

func (r *Router) deleteTenant(ctx context.Context, w http.ResponseWriter, id string) error {
	if err := r.Delete(ctx, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Delete deletes the tenant id and every piece of its data: it is marked
// deleting (its keys stop working at once), unloaded, purged from every
// store, the bus and the archive, then removed from the registry. A crash
// in between leaves it deleting, and Run finishes the deletion.
func (r *Router) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	_, err := r.cfg.Registry.SetStatus(ctx, id, Deleting)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if err := r.Load(ctx); err != nil {
		return err
	}
	if err := r.purge(ctx, id); err != nil {
		return err
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "tenant deleted", slog.String("tenant", id))
	return nil
}

// purge unloads the deleting tenant id, erases its data and removes it
// from the registry.
func (r *Router) purge(ctx context.Context, id string) error {
	r.pool.Block(id)
	if err := r.pool.Unload(ctx, id); err != nil {
		return err
	}
	if err := r.cfg.Loader.Purge(ctx, id); err != nil {
		return fmt.Errorf("tenant %s: purge: %w", id, err)
	}
	r.mu.Lock()
	err := r.cfg.Registry.Remove(ctx, id)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.quotas.drop(id)
	if r.cfg.Counters != nil {
		if err := r.cfg.Counters.Delete(ctx, []string{eventsKey(id)}); err != nil {
			return fmt.Errorf("tenant %s: purge its event counts: %w", id, err)
		}
	}
	return r.Load(ctx)
}

// decodeBody decodes a JSON body (at most 64 KiB; empty: zero value).
func decodeBody(req *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(req.Body, 64<<10+1))
	if err != nil {
		return errs.New(errs.Invalid, "reading the body: %v", err)
	}
	if len(b) > 64<<10 {
		return errs.New(errs.Invalid, "body larger than 64 KiB")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errs.New(errs.Invalid, "body: %v", err)
	}
	return nil
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError writes the API's error body {"error": {"code", "message"}}.
func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	w.Header().Set("X-Kairos-Error", code)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": fmt.Sprintf(format, args...)}})
}
