/* admin.h -- aicn-coordinator's offline admin subcommands on the ledger: mint (the operator's faucet), ledger-export, params. */
#ifndef AICN_COORD_ADMIN_H
#define AICN_COORD_ADMIN_H

/*
 * argv[0] is the program name, argv[1] the subcommand.  Returns the exit code
 * (0 success, 1 failure, 2 usage error), or -1 when argv[1] is not an admin
 * subcommand (the caller goes on with its own).  Messages go to stdout/stderr.
 *
 *   mint --db FILE --account NAME --amount AICN[.frac] [--cause ID]
 *   ledger-export --db FILE --out DIR --key KEY --origin ORIGIN
 *   params [--db FILE] [--json]
 *
 * mint opens the store itself and so refuses while a running coordinator holds its
 * lock (the store's flock): one writer per store, always.
 */
int coord_admin_main(int argc, char **argv);

#endif /* AICN_COORD_ADMIN_H */
