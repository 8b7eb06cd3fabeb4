package history

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/kairoshq/kairos/engine/storage"
	"github.com/kairoshq/kairos/internal/errs"
)

// lease elects one archiver: a map of the store port (storage.Maps)
// holding the holder's name, expiring ttl after the last renewal. Taking
// it needs the holder field absent (the map expired or was released);
// renewing it needs it to name this holder. Both are one conditional Txn,
// so it works on every backend (Redis: a WATCH/MULTI or script on one
// key; embedded: under its lock).
type lease struct {
	maps   storage.Maps
	key    string
	holder string
	ttl    time.Duration
	now    func() time.Time
}

// errLeaseLost: another holder has the lease.
var errLeaseLost = errors.New("history: archiver lease lost to another replica")

// acquire takes the lease if it is free or already this holder's; false
// when another holder has it.
func (l *lease) acquire(ctx context.Context) (bool, error) {
	var t storage.Txn
	t.IfAbsent(l.key, "holder")
	t.Set(l.key, "holder", l.holder)
	t.Set(l.key, "since", strconv.FormatInt(l.now().UnixMilli(), 10))
	t.Expire(l.key, l.now().Add(l.ttl))
	err := l.maps.Apply(ctx, t)
	if errors.Is(err, errs.Conflict) {
		err = l.renew(ctx) // ours already (a restart under the same name)?
		if errors.Is(err, errLeaseLost) {
			return false, nil
		}
	}
	return err == nil, err
}

// renew extends the lease by ttl from now, or returns errLeaseLost.
func (l *lease) renew(ctx context.Context) error {
	var t storage.Txn
	t.IfEquals(l.key, "holder", l.holder)
	t.Expire(l.key, l.now().Add(l.ttl))
	err := l.maps.Apply(ctx, t)
	if errors.Is(err, errs.Conflict) {
		return errLeaseLost
	}
	return err
}

// release gives the lease up so that another replica takes over at once.
func (l *lease) release(ctx context.Context) error {
	var t storage.Txn
	t.IfEquals(l.key, "holder", l.holder)
	t.Del(l.key, "holder")
	t.Del(l.key, "since")
	err := l.maps.Apply(ctx, t)
	if errors.Is(err, errs.Conflict) {
		return nil
	}
	return err
}

// Holder returns the current holder of the archiver lease under key
// ("" when none).
func Holder(ctx context.Context, maps storage.Maps, key string) (string, error) {
	f, err := maps.Fields(ctx, key, []string{"holder"})
	if err != nil {
		return "", err
	}
	return f["holder"], nil
}
