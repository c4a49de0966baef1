#!/bin/sh
# TEST ONLY: pre-trigger hook, sourced by dracut's init.
sh /usr/lib/nvmet-boot-test/target-setup.sh
