# nvme-monitor — build, test, install.
#   make            static musl release build: target/x86_64-unknown-linux-musl/release/nvme-monitor
#   make run        build, then run the daemon in the foreground (ARGS="-v --dry-run" by default)
#   make test       everything the project tests: fmt, clippy, unit/host tests, install tree, a short
#                   fuzz pass (every target builds and runs), VM suite
#   make fuzz       every fuzz target for FUZZ_SECONDS each (default 30), seeded from tests/data
#   make test-vm    only the VM suite (VM_ARGS="scenario-name ..." to pick scenarios)
#   make bench      figures side by side with nvme-cli (host + one VM boot) into BENCHMARKS.md
#   make install    DESTDIR/PREFIX aware
#   make small      the same binary without std's panic machinery (see the rule)
#   BUILD_STD=no    build with the prebuilt std (no rust-src needed; a bigger binary)

TARGET   ?= x86_64-unknown-linux-musl
BIN      := target/$(TARGET)/release/nvme-monitor
PREFIX   ?= /usr
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
DESTDIR  ?=
ARGS     ?= -v --dry-run
VM_ARGS  ?=
FUZZ_SECONDS       ?= 30
FUZZ_SMOKE_SECONDS ?= 3
CARGO    ?= cargo

.PHONY: all build small rust-src run test test-host test-vm lint musl-target install uninstall clean bench fuzz fuzz-smoke

all: build

musl-target:
	@if command -v rustup > /dev/null; then \
		rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET); \
	fi

# std is rebuilt from source (the toolchain's own rust-src) without its backtrace symbolizer:
# the binary is stripped, so gimli, addr2line and miniz_oxide (about 300 KiB of the 908 KiB a
# prebuilt std gives) could only ever print "<unknown>" frames. Panic messages stay ("panicked
# at src/...: ..."), panic=abort as before, and core/alloc are built optimize_for_size. The
# unstable -Z build-std flags are unlocked with RUSTC_BOOTSTRAP=1 on the stable toolchain (as the
# Linux kernel's Rust build does). The first such build fetches std's own dependencies from
# crates.io (cargo cannot vendor them). The source paths are remapped to /rustc/<commit>, as in
# the prebuilt std, so the binary does not depend on where rustup lives. Without rust-src (no
# rustup, an offline builder) the build says so and uses the prebuilt std, as BUILD_STD=no does.
BUILD_STD ?= yes
STD_FLAGS := -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size
# The toolchain's source tree, and the flags that remap it; empty when there is none.
STD_SRC = $$(rustc --print sysroot)/lib/rustlib/src/rust
STD_REMAP = --remap-path-prefix=$(STD_SRC)=/rustc/$$(rustc -vV | sed -n 's/^commit-hash: //p')

rust-src: musl-target
	@if command -v rustup > /dev/null; then \
		rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src; \
	fi

ifneq ($(BUILD_STD),no)
build: rust-src
	@if [ -e "$(STD_SRC)/library/Cargo.lock" ]; then \
		echo "RUSTC_BOOTSTRAP=1 $(CARGO) build --release --locked --target $(TARGET) $(STD_FLAGS)"; \
		RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(STD_REMAP)" \
			$(CARGO) build --release --locked --target $(TARGET) $(STD_FLAGS); \
	else \
		echo "make: no rust-src for $$(rustc -V): building with the prebuilt std (a bigger binary)" >&2; \
		$(CARGO) build --release --locked --target $(TARGET); \
	fi
else
build: musl-target
	$(CARGO) build --release --locked --target $(TARGET)
endif

# The same binary without any panic machinery: std rebuilt with panic=immediate-abort, so a panic
# aborts without a message, which is why it is not the default.
SMALL_BIN := target/small/$(TARGET)/release/nvme-monitor
small: rust-src
	RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort $(STD_REMAP)" \
		$(CARGO) build --release --locked --target $(TARGET) --target-dir target/small $(STD_FLAGS)

run: build
	$(BIN) $(ARGS)

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

test-host:
	$(CARGO) test --locked

# The install tree, file by file, against a stub binary: needs no build.
.PHONY: test-install
test-install:
	tests/install-tree.sh

# The boot tests (real dracut and initramfs-tools images booting their root over NVMe/TCP) run
# with the whole suite, not when VM_ARGS picks scenarios.
test-vm: build
	tests/vm/run $(VM_ARGS)
	@if [ -z "$(VM_ARGS)" ]; then tests/vm/boot/run; fi

# The fuzz targets (fuzz/, their own cargo workspace) built with coverage instrumentation and run by
# libFuzzer, no cargo-fuzz needed (see fuzz/run). fuzz-smoke is the short pass `make test` runs, so a
# target that no longer builds, or crashes at once, fails the tests.
fuzz:
	fuzz/run $(FUZZ_SECONDS)

fuzz-smoke:
	fuzz/run $(FUZZ_SMOKE_SECONDS)

test: lint test-host test-install fuzz-smoke test-vm

# Figures side by side with nvme-cli: host part, then one VM boot; prints the table, writes BENCHMARKS.md.
bench: build
	bench/run

clean:
	$(CARGO) clean

# --- install / uninstall -------------------------------------------------------------------------
# Where things go; each can be overridden (e.g. UNITDIR=/lib/systemd/system on a non-merged-/usr system).
UNITDIR      ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR  ?= $(PREFIX)/share/bash-completion/completions
DRACUTDIR    ?= $(PREFIX)/lib/dracut
INITRAMFSDIR ?= $(PREFIX)/share/initramfs-tools

# The dracut module and initramfs-tools files, whichever exist in the tree right now.
DRACUT_MODULE := $(shell [ -d dracut-module/59nvme-monitor ] && find dracut-module/59nvme-monitor -type f | LC_ALL=C sort)
DRACUT_CONF   := $(wildcard dracut-module/*.conf)
ITOOLS_FILES  := $(shell for f in initramfs-tools/hooks/* initramfs-tools/scripts/*/*; do [ -f "$$f" ] && echo "$$f"; done)

# install -D -m MODE SOURCE DEST, one recipe line each (so make echoes every file it installs).
define install-file
	install -D -m $(1) '$(2)' '$(DESTDIR)$(3)'

endef
# An executable dracut module file stays executable; initramfs-tools only runs executable hooks/scripts.
mode-of = $(shell [ -x '$(1)' ] && echo 0755 || echo 0644)

# Builds only when there is no binary yet: `sudo make install` after `make` needs no cargo as root,
# and `make install BIN=path` installs a prebuilt binary.
$(BIN):
	@[ '$(BIN)' = 'target/$(TARGET)/release/nvme-monitor' ] || { echo "$(BIN): no such binary" >&2; exit 1; }
	$(MAKE) build

install: $(BIN)
	install -D -m 0755 '$(BIN)' '$(DESTDIR)$(SBINDIR)/nvme-monitor'
	install -D -m 0644 doc/nvme-monitor.8 '$(DESTDIR)$(MANDIR)/man8/nvme-monitor.8'
	install -D -m 0644 completions/nvme-monitor.bash '$(DESTDIR)$(BASHCOMPDIR)/nvme-monitor'
	install -D -m 0644 systemd/nvme-monitor.service '$(DESTDIR)$(UNITDIR)/nvme-monitor.service'
	$(foreach f,$(DRACUT_MODULE),$(call install-file,$(call mode-of,$(f)),$(f),$(DRACUTDIR)/modules.d/$(f:dracut-module/%=%)))
	$(foreach f,$(DRACUT_CONF),$(call install-file,0644,$(f),$(DRACUTDIR)/dracut.conf.d/$(notdir $(f))))
	$(foreach f,$(ITOOLS_FILES),$(call install-file,0755,$(f),$(INITRAMFSDIR)/$(f:initramfs-tools/%=%)))

# Removes exactly what install put there (and the dracut module's own directory once it is empty).
uninstall:
	rm -f '$(DESTDIR)$(SBINDIR)/nvme-monitor' '$(DESTDIR)$(MANDIR)/man8/nvme-monitor.8' \
	  '$(DESTDIR)$(BASHCOMPDIR)/nvme-monitor' '$(DESTDIR)$(UNITDIR)/nvme-monitor.service'
	$(foreach f,$(DRACUT_MODULE),rm -f '$(DESTDIR)$(DRACUTDIR)/modules.d/$(f:dracut-module/%=%)'$(newline))
	$(foreach f,$(DRACUT_CONF),rm -f '$(DESTDIR)$(DRACUTDIR)/dracut.conf.d/$(notdir $(f))'$(newline))
	$(foreach f,$(ITOOLS_FILES),rm -f '$(DESTDIR)$(INITRAMFSDIR)/$(f:initramfs-tools/%=%)'$(newline))
	[ ! -d '$(DESTDIR)$(DRACUTDIR)/modules.d/59nvme-monitor' ] || \
	  find '$(DESTDIR)$(DRACUTDIR)/modules.d/59nvme-monitor' -depth -type d -empty -delete

define newline


endef
