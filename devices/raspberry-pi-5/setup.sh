#!/usr/bin/env bash
# Raspberry Pi 5: install edgekd[device] (no PyTorch). See devices/raspberry-pi/setup.sh.
#   bash devices/raspberry-pi-5/setup.sh [VENV_DIR]        (default: ~/edgekd-venv)
exec bash "$(dirname "$0")/../raspberry-pi/setup.sh" 5 "$@"
