"""The Jenkins estimator we compare with."""

from __future__ import annotations

import pytest

from buildcoord.prediction.jenkins import JenkinsEstimator

from .history import build


def test_jenkins_is_the_mean_of_the_last_three_successful_builds() -> None:
    jenkins = JenkinsEstimator()
    for duration, result in [
        (100, "success"),
        (200, "success"),
        (999, "failure"),
        (300, "success"),
        (5, "cancelled"),
        (400, "success"),
    ]:
        jenkins.observe(build(duration, result=result))
    assert jenkins.predict("job") == pytest.approx(300)


def test_jenkins_averages_what_there_is_before_three_successes() -> None:
    jenkins = JenkinsEstimator()
    assert jenkins.predict("job") is None
    jenkins.observe(build(100))
    jenkins.observe(build(50, result="failure"))
    jenkins.observe(build(200))
    assert jenkins.predict("job") == pytest.approx(150)


def test_jenkins_keeps_jobs_apart() -> None:
    jenkins = JenkinsEstimator()
    jenkins.observe(build(100, key="a"))
    jenkins.observe(build(900, key="b"))
    assert jenkins.predict("a") == 100
    assert jenkins.predict("b") == 900
