// Package fileperm keeps the files Kairos writes private to the account
// that runs it. Raw events, visitor state and secrets (the API keys, the
// offer-token signing secret kept in the embedded store) live under the
// data directory and the archive directory; nobody else on the machine
// should read them.
//
// The rules, applied by every package that writes there (api for
// keys.json, engine/embedded for the store, offline/archive for the
// archive, cmd/kairos for the data directory itself):
//
//   - directories are created with [DirMode] (0700) and files with
//     [FileMode] (0600);
//   - a directory Kairos owns entirely (the store's, the archive's) is
//     made private when it is opened, with everything in it: [PrivateTree]
//     removes the group and other bits (chmod go-rwx) of what an older
//     version created 0755/0644, and the caller logs a warning naming the
//     directory; an entry it cannot change (another owner) is an error
//     that names the file and the command that fixes it;
//   - a file holding a secret that an operator may have written by hand
//     (keys.json) is not changed but refused when others may read it:
//     [CheckPrivate], as ssh does with private keys.
//
// On Windows, where Unix permission bits do not apply, every function
// succeeds without checking anything.
package fileperm
