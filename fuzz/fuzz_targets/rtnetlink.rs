//! rtnetlink datagrams: any bytes give messages or an error naming an offset inside the datagram,
//! never a panic, and the view of links and addresses says afterwards what each message said.
//!
//! Input: datagrams, each preceded by its length (u16 little-endian), as the route socket would
//! deliver them one after another to one view.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvme_monitor::rtnetlink::{NetChange, NetView, RtMsg, parse};

fn check(view: &mut NetView, msg: &RtMsg) {
    let change = view.apply(msg);
    let full = change == Some(NetChange::Full);
    match msg {
        RtMsg::Link(l) => {
            if full {
                assert!(
                    view.link(l.ifindex).is_none(),
                    "a link past the cap is tracked"
                );
            } else {
                assert_eq!(
                    view.link(l.ifindex),
                    Some(l),
                    "the view holds the link as announced"
                );
            }
            if let Some(NetChange::LinkUp { ifindex }) = change {
                assert!(
                    ifindex == l.ifindex && view.is_up(ifindex),
                    "LinkUp for a link not up"
                );
            }
        }
        RtMsg::LinkGone { ifindex } => {
            assert!(
                view.link(*ifindex).is_none(),
                "a deleted link is still there"
            );
            assert!(!view.is_up(*ifindex));
            assert!(!view.any_ready_on(*ifindex, false) && !view.any_ready_on(*ifindex, true));
        }
        RtMsg::Addr(a) => {
            if !full {
                assert_eq!(view.addr_ready_on(a.ifindex, a.addr), a.usable());
            }
            if let Some(NetChange::AddrReady { ifindex, addr }) = change {
                assert!(a.usable() && ifindex == a.ifindex && addr == a.addr);
            }
        }
        RtMsg::AddrGone(a) => {
            assert!(
                !view.addr_ready_on(a.ifindex, a.addr),
                "a deleted address is still usable"
            );
        }
        RtMsg::Done | RtMsg::Error(_) => assert_eq!(change, None),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut view = NetView::default();
    let mut rest = data;
    let mut msgs = Vec::new();
    while rest.len() >= 2 {
        let len = (u16::from_le_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        let datagram = &rest[2..2 + len];
        rest = &rest[2 + len..];
        msgs.clear();
        if let Err(e) = parse(datagram, &mut msgs) {
            assert!(
                e.offset < datagram.len(),
                "error offset {} past {} bytes",
                e.offset,
                datagram.len()
            );
            assert!(!e.to_string().is_empty());
        }
        for m in &msgs {
            check(&mut view, m);
        }
    }
});
