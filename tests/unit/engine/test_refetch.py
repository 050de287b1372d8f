"""When a host that holds a tree fetches the fan-out artifact again instead of taking the change over SSH."""

from imgbuild.engine.fanout import refetch

TREE = 600 << 20


def test_a_host_without_a_tree_always_fetches():
    assert refetch(None, TREE, 1)


def test_a_small_change_goes_over_ssh_to_a_few_hosts():
    assert not refetch(0, TREE, 8)  # unchanged
    assert not refetch(TREE // 10, TREE, 4)  # 4 x 60 MB over SSH: less than one tree


def test_a_big_change_or_many_hosts_fetch():
    assert refetch(TREE // 2 + 1, TREE, 1)  # most of the tree changes
    assert refetch(TREE // 10, TREE, 20)  # 20 x 60 MB would be two trees from this machine
    assert not refetch(TREE // 10, TREE, 10) and refetch(TREE // 10 + 1, TREE, 10)  # the edge: one whole tree
