# recdelta build configuration; override on the make command line.
VERSION = 0.1.0

PREFIX = /usr/local
BINDIR = $(PREFIX)/bin
LIBEXECDIR = $(PREFIX)/libexec/recdelta
MANPREFIX = $(PREFIX)/share/man
COMPLETIONDIR = $(PREFIX)/share/bash-completion/completions

CC = cc
CPPFLAGS = -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
CFLAGS = -std=c11 -O2 -g -Wall -Wextra -Werror
LDFLAGS =
LDLIBS = -lcurl -lsqlite3 -lcrypto -lxxhash -lpthread -lm
# libjq (1.6 has no .pc file), for the programs that run the user's filters.
JQLIBS = -ljq -lonig

# make SAN=1: AddressSanitizer and UndefinedBehaviorSanitizer.
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
