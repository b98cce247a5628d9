"""The sample project that ``buildcoord up --demo`` builds: files shipped in the package.

``project/`` holds the ``main`` branch (a tiny shell program, its test and ``build.sh``);
``feature/`` holds the files the ``feature/faster`` branch changes.
"""
