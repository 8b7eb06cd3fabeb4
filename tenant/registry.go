package tenant

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kairoshq/kairos/internal/httpx"
	"regexp"
	"time"

	"github.com/kairoshq/kairos/engine/defstore"
	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// Collection is the name of the registry's document collection.
const Collection = "tenants"

// Status is a tenant's state.
type Status string

// The statuses of a tenant.
const (
	// Active tenants are served.
	Active Status = "active"
	// Suspended tenants keep their data; their keys get 403.
	Suspended Status = "suspended"
	// Deleting tenants are being erased (a deletion interrupted by a
	// crash is finished at the next start).
	Deleting Status = "deleting"
)

// Keys is a tenant's key pair.
type Keys struct {
	Publishable string `json:"publishable_key"`
	Secret      string `json:"secret_key"`
}

// Quotas bound what a tenant may use; zero means no bound.
type Quotas struct {
	// RequestsPerSecond bounds the tenant's requests, all keys and
	// clients together (a token bucket with a burst of twice the rate).
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	// EventsPerSecond bounds the events of the tenant's event requests
	// per second (a bucket holding one second's events, charged with the
	// events each request accepted): while it is overdrawn, event
	// requests are refused before any work, so that a tenant sending
	// large batches within its request rate cannot take the engine's
	// time from the others.
	EventsPerSecond float64 `json:"events_per_second,omitempty"`
	// EventsPerDay bounds the events accepted per UTC day.
	EventsPerDay int64 `json:"events_per_day,omitempty"`
	// Items bounds the items of the tenant's model (POST /v1/items is
	// refused at the bound).
	Items int `json:"items,omitempty"`
	// Visitors bounds the distinct visitors the tenant's events name
	// (kept in its store); a batch naming new visitors beyond it is
	// refused, known visitors' events are accepted.
	Visitors int64 `json:"visitors,omitempty"`
}

func (q Quotas) validate() error {
	if q.RequestsPerSecond < 0 || q.EventsPerSecond < 0 || q.EventsPerDay < 0 || q.Items < 0 || q.Visitors < 0 {
		return errs.New(errs.Invalid, "quotas: requests_per_second, events_per_second, events_per_day, items and visitors must be >= 0")
	}
	return nil
}

// Tenant is one site served by the deployment.
type Tenant struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Status  Status    `json:"status"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Keys    Keys      `json:"keys"`
	// AllowedOrigins are the origins allowed to use the publishable key
	// (as kairos serve --allowed-origins).
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	Quotas         Quotas   `json:"quotas"`
	// Previous are the keys before the last rotation, still accepted
	// until Previous.Until (a rotation with a grace period); nil: none.
	Previous *PreviousKeys `json:"previous_keys,omitempty"`
}

// PreviousKeys are rotated-out keys accepted until Until.
type PreviousKeys struct {
	Keys
	Until time.Time `json:"until"`
}

// ActiveKeys returns the tenant's keys accepted at now: its keys, and
// the previous ones while their grace lasts.
func (t Tenant) ActiveKeys(now time.Time) []Keys {
	out := []Keys{t.Keys}
	if t.Previous != nil && now.Before(t.Previous.Until) {
		out = append(out, t.Previous.Keys)
	}
	return out
}

// idRE is the form of a tenant id: it becomes part of Redis key prefixes,
// RabbitMQ names and directory names.
var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// ValidID reports whether id is a valid tenant id: 1-40 lowercase letters,
// digits, '-' or '_', starting with a letter or digit.
func ValidID(id string) bool { return idRE.MatchString(id) }

// Spec is what creates a tenant (POST /v1/tenants).
type Spec struct {
	// ID is the tenant's id ("": generated, "t" + 12 random characters).
	ID             string   `json:"id,omitempty"`
	Name           string   `json:"name,omitempty"`
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	Quotas         Quotas   `json:"quotas"`
}

// Registry keeps the tenants on a store's documents.
type Registry struct {
	coll defstore.Collection
	now  func() time.Time
}

// NewRegistry returns the registry kept in docs (now nil: time.Now).
func NewRegistry(docs storage.Documents, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{coll: defstore.New(docs, Collection), now: now}
}

// Create creates a tenant with fresh keys, or returns errs.Conflict when
// the id is taken (errs.Invalid for a bad spec).
func (r *Registry) Create(ctx context.Context, s Spec) (Tenant, error) {
	if s.ID == "" {
		id, err := randomString(9)
		if err != nil {
			return Tenant{}, err
		}
		s.ID = "t" + toLowerID(id)
	}
	if !ValidID(s.ID) {
		return Tenant{}, errs.New(errs.Invalid, "id %q: want 1-40 lowercase letters, digits, '-' or '_', starting with a letter or digit", s.ID)
	}
	if len(s.Name) > 200 {
		return Tenant{}, errs.New(errs.Invalid, "name: longer than 200 characters")
	}
	if err := s.Quotas.validate(); err != nil {
		return Tenant{}, err
	}
	if err := checkOrigins(s.AllowedOrigins); err != nil {
		return Tenant{}, err
	}
	keys, err := NewKeys()
	if err != nil {
		return Tenant{}, err
	}
	now := r.now().UTC()
	t := Tenant{ID: s.ID, Name: s.Name, Status: Active, Created: now, Updated: now, Keys: keys, AllowedOrigins: s.AllowedOrigins, Quotas: s.Quotas}
	if err := r.coll.Put(ctx, t.ID, t, storage.Create); err != nil {
		if errors.Is(err, errs.Conflict) {
			return Tenant{}, errs.New(errs.Conflict, "tenant %q exists", t.ID)
		}
		return Tenant{}, fmt.Errorf("tenant: create: %w", err)
	}
	return t, nil
}

// Get returns the tenant id, or errs.NotFound.
func (r *Registry) Get(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	if err := r.coll.Get(ctx, id, &t); err != nil {
		if errors.Is(err, errs.NotFound) {
			return Tenant{}, errs.New(errs.NotFound, "tenant %q not found", id)
		}
		return Tenant{}, fmt.Errorf("tenant: get: %w", err)
	}
	return t, nil
}

// All returns every tenant in ascending id order.
func (r *Registry) All(ctx context.Context) ([]Tenant, error) {
	docs, err := r.coll.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenant: list: %w", err)
	}
	out := make([]Tenant, 0, len(docs))
	for _, d := range docs {
		var t Tenant
		if err := json.Unmarshal(d.JSON, &t); err != nil {
			return nil, fmt.Errorf("tenant %q: %w: stored record: %w", d.ID, errs.Internal, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Version changes with every change of the registry.
func (r *Registry) Version(ctx context.Context) (int64, error) { return r.coll.Version(ctx) }

// Update applies change to the stored tenant id atomically and returns
// the result (errs.NotFound when absent).
func (r *Registry) Update(ctx context.Context, id string, change func(*Tenant) error) (Tenant, error) {
	var out Tenant
	_, err := r.coll.Upsert(ctx, id, func(old []byte) (any, error) {
		if old == nil {
			return nil, errs.New(errs.NotFound, "tenant %q not found", id)
		}
		var t Tenant
		if err := json.Unmarshal(old, &t); err != nil {
			return nil, fmt.Errorf("tenant %q: %w: stored record: %w", id, errs.Internal, err)
		}
		if err := change(&t); err != nil {
			return nil, err
		}
		t.Updated = r.now().UTC()
		out = t
		return t, nil
	})
	if err != nil {
		return Tenant{}, err
	}
	return out, nil
}

// SetStatus changes a tenant's status (a deleting tenant stays deleting).
func (r *Registry) SetStatus(ctx context.Context, id string, s Status) (Tenant, error) {
	return r.Update(ctx, id, func(t *Tenant) error {
		if t.Status == Deleting && s != Deleting {
			return errs.New(errs.Conflict, "tenant %q is being deleted", id)
		}
		t.Status = s
		return nil
	})
}

// Rotate gives the tenant a new key pair. The old keys stop working at
// once when grace is 0, else they are accepted for grace more (the keys
// of an earlier rotation's grace stop at once: two pairs at most).
func (r *Registry) Rotate(ctx context.Context, id string, grace time.Duration) (Tenant, error) {
	if grace < 0 {
		return Tenant{}, errs.New(errs.Invalid, "grace: must be >= 0")
	}
	keys, err := NewKeys()
	if err != nil {
		return Tenant{}, err
	}
	return r.Update(ctx, id, func(t *Tenant) error {
		if t.Status == Deleting {
			return errs.New(errs.Conflict, "tenant %q is being deleted", id)
		}
		t.Previous = nil
		if grace > 0 {
			t.Previous = &PreviousKeys{Keys: t.Keys, Until: r.now().UTC().Add(grace)}
		}
		t.Keys = keys
		return nil
	})
}

// Remove deletes the tenant's record (its data must be erased first).
func (r *Registry) Remove(ctx context.Context, id string) error {
	if err := r.coll.Delete(ctx, id); err != nil {
		if errors.Is(err, errs.NotFound) {
			return errs.New(errs.NotFound, "tenant %q not found", id)
		}
		return fmt.Errorf("tenant: remove: %w", err)
	}
	return nil
}

// NewKeys generates a key pair: "pk_" and "sk_" followed by 32 characters
// of URL-safe base64 (192 random bits each), the form of kairos serve's
// generated keys.
func NewKeys() (Keys, error) {
	pk, err := randomString(24)
	if err != nil {
		return Keys{}, err
	}
	sk, err := randomString(24)
	if err != nil {
		return Keys{}, err
	}
	return Keys{Publishable: "pk_" + pk, Secret: "sk_" + sk}, nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("tenant: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// toLowerID maps base64 to the id alphabet (lowercase, digits, '-', '_').
func toLowerID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// checkOrigins validates a tenant's allowed_origins as kairos serve
// --allowed-origins does: a tenant whose server cannot be built would
// answer 503 to every request.
func checkOrigins(origins []string) error {
	for i, o := range origins {
		if err := httpx.CheckOrigin(o); err != nil {
			return errs.New(errs.Invalid, "allowed_origins[%d] %q: %v", i, o, err)
		}
	}
	return nil
}
