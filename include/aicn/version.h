/* version.h -- the release number: --version of every program, HELLO's software field, the packages. */
#ifndef AICN_VERSION_H
#define AICN_VERSION_H

/* The Makefile reads this line for `make deb` / `make rpm`; keep its shape. */
#define AICN_VERSION "0.1.0"

#endif /* AICN_VERSION_H */
