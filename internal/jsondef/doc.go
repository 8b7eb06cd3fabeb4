// Package jsondef decodes strict JSON definitions (promotion offers,
// campaigns and rules in engine/promo, experiments in engine/experiments)
// member by member, with errors naming the JSON path of the first problem:
//
//	o, err := jsondef.NewObject("rule", body) // the path of the object
//	if err != nil {
//		return err // rule: must be an object, got an array
//	}
//	name, err := o.Str("name", false, 1024)         // rule.name: must be a string, got a number
//	cooldown, err := o.Duration("cooldown", time.Hour, 0, 366*24*time.Hour)
//	…
//	return o.Done("id, name, cooldown") // rule.colour: unknown member (valid: id, name, cooldown)
//
// Every reader marks its member as read; Done refuses the members that
// were not, so unknown members are errors rather than silently dropped.
// A member written as null is absent. Paths join members with '.' and
// elements with [i] (Join, Index): "rules[r1].when.all[2].count.within".
//
// Every error of a reader is an *Error (Path and Reason) that wraps
// engine.ErrInvalid, so the API maps it to 400 invalid with its message.
//
// Duration is the definitions' duration type: written in JSON as a string
// in Go syntax ("90s", "10m", "1h30m") or whole days ("7d"), and written
// back in the largest whole unit.
//
// The package imports engine only (for ErrInvalid); the limits of each
// kind of definition (sizes, counts, ranges) stay with its package and are
// passed to the readers.
package jsondef
