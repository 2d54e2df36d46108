#!/usr/bin/env python
from renkei.cli import main

main()
