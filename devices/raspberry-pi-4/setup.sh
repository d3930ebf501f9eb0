#!/usr/bin/env bash
# Raspberry Pi 4: install edgekd[device] (no PyTorch). See devices/raspberry-pi/setup.sh.
#   bash devices/raspberry-pi-4/setup.sh [VENV_DIR]        (default: ~/edgekd-venv)
exec bash "$(dirname "$0")/../raspberry-pi/setup.sh" 4 "$@"
