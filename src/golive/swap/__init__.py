"""Blue-green container swap behind Apache: start the idle colour, prove it healthy, move the
proxy to it with a tested graceful reload, prove the public side answers from it, keep the old
colour running so that undo is a reload away."""
