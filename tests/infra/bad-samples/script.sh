#!/usr/bin/env bash
cd $1
rm -rf $TARGET_DIR/*
