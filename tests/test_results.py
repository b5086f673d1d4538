"""Status aggregation by priority, as Juju does: the worst state of a component's services wins."""

from agencystack.results import ComponentStatus, ServiceStatus, State


def test_worst_state_wins():
    assert State.aggregate([State.RUNNING, State.STARTING, State.FAILED]) == State.FAILED
    assert State.aggregate([State.RUNNING, State.STARTING]) == State.STARTING
    assert State.aggregate([State.RUNNING, State.STOPPED]) == State.STOPPED
    assert State.aggregate([]) == State.ABSENT


def test_services_scaled_to_zero_do_not_change_the_components_state():
    status = ComponentStatus.from_services("acme", "posthog", [ServiceStatus("web", State.RUNNING),
                                                               ServiceStatus("check", State.ABSENT, "scaled to 0")])
    assert status.state == State.RUNNING


def test_a_completed_job_shows_completed_and_leaves_the_component_running():
    status = ComponentStatus.from_services("acme", "notes", [ServiceStatus("migrate", State.COMPLETED, "exited (0)"),
                                                             ServiceStatus("web", State.RUNNING)])
    assert status.services[0].state.value == "completed" and status.state == State.RUNNING
    assert State.aggregate([State.COMPLETED]) == State.COMPLETED
    assert State.aggregate([State.COMPLETED, State.STOPPED]) == State.STOPPED
