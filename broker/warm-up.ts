// One in-process client through a full CONNECT before any listener opens.
//
// V8 fixes the in-object size of aedes' Client after the first few are constructed,
// from the properties they have by then. Under a burst of real connections the first
// Clients are all still waiting for their (asynchronous) authentication at that
// moment, so every later Client keeps the properties set at CONNECT in a separate
// out-of-object store: ~40 B more per connection (heap snapshots, 2,000 idle clients).
// A first client that completes its CONNECT synchronously gives them their place.
// It is never reachable from the network: it exists only on an in-memory stream, its
// ClientState is marked here and authenticate() accepts only that mark, with no rights
// (no principal), and it is closed as soon as it is ready.
import { Duplex } from 'node:stream'
import type { Client } from 'aedes'
import { ClientState, type BrokerContext } from './context.ts'
import { connectPacketBytes } from './warm-up-packet.ts'

export function warmUpClientShape(ctx: BrokerContext): Promise<void> {
  return new Promise((resolve) => {
    const conn = new Duplex({
      read() {},
      write(_chunk, _enc, cb) {
        cb()
      },
    })
    const st = new ClientState('mqtt', undefined)
    st.warmUp = true
    const client: Client = ctx.aedes.handle(conn)
    ctx.clients.set(client, st)
    const timer = setTimeout(finish, 2000)
    const onReady = (c: Client) => {
      if (c === client) finish()
    }
    ctx.aedes.on('clientReady', onReady)
    function finish() {
      clearTimeout(timer)
      ctx.aedes.off('clientReady', onReady)
      client.close(() => resolve())
      conn.destroy()
    }
    conn.push(connectPacketBytes(`$gridpatrol-warm-up-${process.pid}`))
  })
}
