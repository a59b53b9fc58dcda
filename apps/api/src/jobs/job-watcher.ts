import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  createRedis,
  type JobEventMessage,
  jobEventsChannel,
  onShardedMessage,
  type RedisClient,
  subscribeSharded,
  unsubscribeSharded,
} from '@app/queue';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';

type Listener = (event: JobEventMessage) => void;

/**
 * Live job events for streams and waiters, over one Redis subscriber connection per API
 * instance (sharded pub/sub on a cluster: see publishSharded): a job's channel is subscribed while someone watches it. Nothing blocks the event loop;
 * callers also read the events table, so a message lost here delays, never loses, an event.
 */
@Injectable()
export class JobWatcher implements OnApplicationShutdown {
  private readonly subscriber: RedisClient;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.subscriber = createRedis(config, 'subscriber', 'api-jobs', { sharded: true });
    onShardedMessage(config, this.subscriber, (channel, message) => {
      const set = this.listeners.get(channel);
      if (!set) return;
      const event = JSON.parse(message) as JobEventMessage;
      for (const l of set) l(event);
    });
  }

  /** Calls `listener` with each event of the job published from now on; returns the way to stop. */
  async watch(jobId: string, listener: Listener): Promise<() => void> {
    const channel = jobEventsChannel(this.config, jobId);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      await subscribeSharded(this.config, this.subscriber, channel).catch(() => undefined);
    }
    set.add(listener);
    return () => {
      set!.delete(listener);
      if (set!.size === 0 && this.listeners.get(channel) === set) {
        this.listeners.delete(channel);
        void unsubscribeSharded(this.config, this.subscriber, channel).catch(() => undefined);
      }
    };
  }

  onApplicationShutdown(): void {
    this.subscriber.disconnect();
  }
}
